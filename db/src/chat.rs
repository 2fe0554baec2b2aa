//! The chat tables: `chat_conversations` (one per subject — an audit or a fiche — and
//! user) and `chat_messages` (the questions and answers, in id order).

use crate::DbResult;
use crate::enums::Named;
use crate::schema::{chat_conversations, chat_messages};
use callaudit_domain::chat::{ChatMessageStatus, ChatRole};
use chrono::{DateTime, Utc};
use diesel::{ExpressionMethods, OptionalExtension, QueryDsl, SelectableHelper};
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use uuid::Uuid;

/// What a conversation is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Subject<'a> {
    /// An audit.
    Audit(Uuid),
    /// A fiche.
    Fiche(&'a str),
}

/// A stored message.
#[derive(Debug, Clone, diesel::Queryable, diesel::Selectable)]
#[diesel(table_name = chat_messages)]
pub struct ChatMessageRow {
    /// Id (the conversation's order).
    pub id: i64,
    /// Who wrote it.
    #[diesel(deserialize_as = Named<ChatRole>)]
    pub role: ChatRole,
    /// Text.
    pub content: String,
    /// How far it got.
    #[diesel(deserialize_as = Named<ChatMessageStatus>)]
    pub status: ChatMessageStatus,
    /// The quotes of an answer with their verdicts (`[domain::chat::QuoteCheck]`).
    pub quotes: serde_json::Value,
    /// Model of an answer.
    pub model: Option<String>,
    /// Prompt tokens of an answer.
    pub prompt_tokens: i32,
    /// Completion tokens of an answer.
    pub completion_tokens: i32,
    /// Why an answer is partial or failed.
    pub error: Option<String>,
    /// When it was stored.
    pub created_at: DateTime<Utc>,
}

/// A message to store.
#[derive(Debug, Clone, diesel::Insertable)]
#[diesel(table_name = chat_messages)]
pub struct NewChatMessage<'a> {
    /// Conversation.
    pub conversation_id: Uuid,
    /// `ChatRole::as_str`.
    pub role: &'static str,
    /// Text.
    pub content: &'a str,
    /// `ChatMessageStatus::as_str`.
    pub status: &'static str,
    /// Quotes with their verdicts.
    pub quotes: &'a serde_json::Value,
    /// Model of an answer.
    pub model: Option<&'a str>,
    /// Prompt tokens.
    pub prompt_tokens: i32,
    /// Completion tokens.
    pub completion_tokens: i32,
    /// Why an answer is partial or failed.
    pub error: Option<&'a str>,
}

/// A page of a conversation, oldest first, and its size.
#[derive(Debug, Clone)]
pub struct MessagePage {
    /// The page.
    pub rows: Vec<ChatMessageRow>,
    /// Messages in the conversation.
    pub total: i64,
}

/// The conversation of `user` about `subject`, if they have one.
pub async fn find_conversation(
    conn: &mut AsyncPgConnection,
    subject: Subject<'_>,
    user: Uuid,
) -> DbResult<Option<Uuid>> {
    let query = chat_conversations::table
        .filter(chat_conversations::user_id.eq(user))
        .select(chat_conversations::id)
        .into_boxed();
    let query = match subject {
        Subject::Audit(id) => query.filter(chat_conversations::audit_id.eq(id)),
        Subject::Fiche(id) => query.filter(chat_conversations::fiche_id.eq(id)),
    };
    Ok(query.first(conn).await.optional()?)
}

/// The conversation of `user` about `subject`, created when they have none (two first
/// questions at once share one: the second insert yields to the unique index).
pub async fn conversation(
    conn: &mut AsyncPgConnection,
    subject: Subject<'_>,
    user: Uuid,
) -> DbResult<Uuid> {
    if let Some(id) = find_conversation(conn, subject, user).await? {
        return Ok(id);
    }
    let (audit_id, fiche_id) = match subject {
        Subject::Audit(id) => (Some(id), None),
        Subject::Fiche(id) => (None, Some(id)),
    };
    diesel::insert_into(chat_conversations::table)
        .values((
            chat_conversations::id.eq(Uuid::new_v4()),
            chat_conversations::audit_id.eq(audit_id),
            chat_conversations::fiche_id.eq(fiche_id),
            chat_conversations::user_id.eq(user),
        ))
        .on_conflict_do_nothing()
        .execute(&mut *conn)
        .await?;
    find_conversation(conn, subject, user)
        .await?
        .ok_or(diesel::result::Error::NotFound.into())
}

/// Stores a message and marks the conversation updated; returns the stored row.
pub async fn insert(
    conn: &mut AsyncPgConnection,
    message: &NewChatMessage<'_>,
) -> DbResult<ChatMessageRow> {
    let row = diesel::insert_into(chat_messages::table)
        .values(message)
        .returning(ChatMessageRow::as_returning())
        .get_result(&mut *conn)
        .await?;
    diesel::update(chat_conversations::table.find(message.conversation_id))
        .set(chat_conversations::updated_at.eq(Utc::now()))
        .execute(conn)
        .await?;
    Ok(row)
}

/// The `limit` most recent messages of the conversation stored before message
/// `before`, oldest first, failed answers left out (they hold no text).
pub async fn recent_before(
    conn: &mut AsyncPgConnection,
    conversation: Uuid,
    before: i64,
    limit: i64,
) -> DbResult<Vec<ChatMessageRow>> {
    let mut rows: Vec<ChatMessageRow> = chat_messages::table
        .filter(chat_messages::conversation_id.eq(conversation))
        .filter(chat_messages::id.lt(before))
        .filter(chat_messages::status.ne(ChatMessageStatus::Failed.as_str()))
        .order(chat_messages::id.desc())
        .limit(limit)
        .select(ChatMessageRow::as_select())
        .load(conn)
        .await?;
    rows.reverse();
    Ok(rows)
}

/// A page of the whole conversation, oldest first.
pub async fn page(
    conn: &mut AsyncPgConnection,
    conversation: Uuid,
    limit: i64,
    offset: i64,
) -> DbResult<MessagePage> {
    let rows = chat_messages::table
        .filter(chat_messages::conversation_id.eq(conversation))
        .order(chat_messages::id.asc())
        .limit(limit)
        .offset(offset)
        .select(ChatMessageRow::as_select())
        .load(&mut *conn)
        .await?;
    let total = chat_messages::table
        .filter(chat_messages::conversation_id.eq(conversation))
        .count()
        .get_result(conn)
        .await?;
    Ok(MessagePage { rows, total })
}
