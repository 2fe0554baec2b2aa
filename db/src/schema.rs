// Written in the shape `diesel print-schema` prints for ../migrations (diesel_cli needs
// libpq, absent here). Every table is exercised by the end-to-end tests; regenerate with
// `diesel print-schema` where diesel_cli is available.

diesel::table! {
    api_tokens (id) {
        id -> Uuid,
        user_id -> Uuid,
        token_hash -> Text,
        created_at -> Timestamptz,
        expires_at -> Timestamptz,
        revoked_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_batch_items (batch_id, fiche_id) {
        batch_id -> Uuid,
        fiche_id -> Text,
        audit_id -> Nullable<Uuid>,
        status -> Text,
        error -> Nullable<Text>,
        position -> Int4,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_batches (id) {
        id -> Uuid,
        audit_config_id -> Uuid,
        status -> Text,
        workflow_id -> Text,
        use_rlm -> Bool,
        total -> Int4,
        completed -> Int4,
        failed -> Int4,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        running -> Int4,
        cancelled -> Int4,
        window_size -> Int4,
        selection -> Nullable<Jsonb>,
        config_snapshot -> Nullable<Jsonb>,
        config_version -> Nullable<Timestamptz>,
        idempotency_key -> Nullable<Text>,
        request_fingerprint -> Nullable<Text>,
        cancel_requested_by -> Nullable<Text>,
        cancel_requested_at -> Nullable<Timestamptz>,
        error -> Nullable<Text>,
        runs -> Int4,
        started_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    audit_configs (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        active -> Bool,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_control_points (id) {
        id -> Uuid,
        step_id -> Uuid,
        position -> Int4,
        description -> Text,
    }
}

diesel::table! {
    audit_reruns (id) {
        id -> Uuid,
        audit_id -> Uuid,
        kind -> Text,
        position -> Int4,
        control_point_index -> Nullable<Int4>,
        n -> Int4,
        workflow_id -> Text,
        status -> Text,
        use_rlm -> Bool,
        instructions -> Nullable<Text>,
        requested_by -> Nullable<Uuid>,
        requested_by_email -> Nullable<Text>,
        proposal -> Nullable<Jsonb>,
        model -> Nullable<Text>,
        prompt_tokens -> Int4,
        completion_tokens -> Int4,
        llm_requests -> Int4,
        outcome -> Nullable<Jsonb>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_step_results (id) {
        id -> Uuid,
        audit_id -> Uuid,
        position -> Int4,
        step_name -> Text,
        weight -> Float8,
        critical -> Bool,
        score -> Float8,
        conforme -> Text,
        raw_result -> Jsonb,
        model -> Nullable<Text>,
        prompt_tokens -> Int4,
        completion_tokens -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    audit_steps (id) {
        id -> Uuid,
        audit_config_id -> Uuid,
        position -> Int4,
        name -> Text,
        instructions -> Text,
        weight -> Float8,
        critical -> Bool,
    }
}

diesel::table! {
    audits (id) {
        id -> Uuid,
        fiche_id -> Text,
        audit_config_id -> Uuid,
        status -> Text,
        use_rlm -> Bool,
        workflow_id -> Text,
        score -> Nullable<Float8>,
        niveau -> Nullable<Text>,
        critical -> Nullable<Bool>,
        steps_total -> Int4,
        steps_done -> Int4,
        error -> Nullable<Text>,
        batch_id -> Nullable<Uuid>,
        requested_by -> Nullable<Uuid>,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        idempotency_key -> Nullable<Text>,
        request_fingerprint -> Nullable<Text>,
        config_snapshot -> Nullable<Jsonb>,
        config_version -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    automation_email_deliveries (id) {
        id -> Int8,
        run_id -> Uuid,
        recipients -> Array<Text>,
        status -> Text,
        attempts -> Int4,
        smtp_response -> Nullable<Text>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    automation_runs (id) {
        id -> Uuid,
        schedule_id -> Uuid,
        scheduled_at -> Timestamptz,
        status -> Text,
        workflow_id -> Text,
        result_summary -> Jsonb,
        ignored_fiches -> Jsonb,
        error -> Nullable<Text>,
        started_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    automation_schedules (id) {
        id -> Uuid,
        name -> Text,
        description -> Text,
        cron -> Text,
        timezone -> Text,
        active -> Bool,
        audit_config_id -> Nullable<Uuid>,
        fiche_selection -> Jsonb,
        options -> Jsonb,
        notifications -> Jsonb,
        temporal_schedule_id -> Text,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        webhook_secret -> Nullable<Text>,
    }
}

diesel::table! {
    automation_webhook_deliveries (id) {
        id -> Int8,
        run_id -> Uuid,
        event -> Text,
        url -> Text,
        status -> Text,
        attempts -> Int4,
        response_status -> Nullable<Int4>,
        error -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    chat_conversations (id) {
        id -> Uuid,
        audit_id -> Nullable<Uuid>,
        fiche_id -> Nullable<Text>,
        user_id -> Nullable<Uuid>,
        title -> Text,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    chat_messages (id) {
        id -> Int8,
        conversation_id -> Uuid,
        role -> Text,
        content -> Text,
        completion_tokens -> Int4,
        created_at -> Timestamptz,
        status -> Text,
        quotes -> Jsonb,
        model -> Nullable<Text>,
        prompt_tokens -> Int4,
        error -> Nullable<Text>,
    }
}

diesel::table! {
    crm_permit_leases (pool, slot) {
        pool -> Text,
        slot -> Int4,
        holder -> Nullable<Text>,
        lease_until -> Nullable<Timestamptz>,
        acquired_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    events (id) {
        id -> Int8,
        topic -> Text,
        #[sql_name = "type"]
        type_ -> Text,
        payload -> Jsonb,
        dedupe_key -> Nullable<Text>,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    fiche_fetch_job_days (job_id, day) {
        job_id -> Uuid,
        day -> Date,
        status -> Text,
        fiches_found -> Int4,
        error -> Nullable<Text>,
        started_at -> Nullable<Timestamptz>,
        completed_at -> Nullable<Timestamptz>,
        attempt -> Int4,
        fiches_fetched -> Int4,
        fiches_failed -> Int4,
    }
}

diesel::table! {
    fiche_fetch_jobs (id) {
        id -> Uuid,
        date_from -> Date,
        date_to -> Date,
        status -> Text,
        workflow_id -> Text,
        days_total -> Int4,
        days_done -> Int4,
        days_failed -> Int4,
        fiches_found -> Int4,
        error -> Nullable<Text>,
        created_by -> Nullable<Uuid>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
        groupes -> Jsonb,
        force_refresh -> Bool,
        attempt -> Int4,
        fiches_fetched -> Int4,
        fiches_failed -> Int4,
        started_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    fiches (fiche_id) {
        fiche_id -> Text,
        cle -> Nullable<Text>,
        groupe -> Nullable<Text>,
        statut -> Nullable<Text>,
        date_vente -> Nullable<Timestamptz>,
        client -> Jsonb,
        details -> Nullable<Jsonb>,
        sales_list_only -> Bool,
        recordings_count -> Int4,
        details_fetched_at -> Nullable<Timestamptz>,
        force_refreshed_at -> Nullable<Timestamptz>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        personal_data_erased_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    login_throttle (scope, subject_hash) {
        scope -> Text,
        subject_hash -> Text,
        failures -> Int4,
        window_started_at -> Timestamptz,
    }
}

diesel::table! {
    permissions (id) {
        id -> Int4,
        resource -> Text,
        action -> Text,
    }
}

diesel::table! {
    pii_access_log (id) {
        id -> Int8,
        user_id -> Nullable<Uuid>,
        user_email -> Nullable<Text>,
        action -> Text,
        subject_kind -> Text,
        subject_id -> Text,
        detail -> Jsonb,
        at -> Timestamptz,
    }
}

diesel::table! {
    recordings (recording_id) {
        recording_id -> Text,
        fiche_id -> Text,
        position -> Int4,
        url -> Text,
        started_at -> Nullable<Timestamptz>,
        duration_s -> Nullable<Float8>,
        direction -> Nullable<Text>,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::table! {
    role_permissions (role_id, permission_id) {
        role_id -> Int4,
        permission_id -> Int4,
    }
}

diesel::table! {
    roles (id) {
        id -> Int4,
        name -> Text,
        description -> Text,
        created_at -> Timestamptz,
    }
}

diesel::table! {
    stream_tokens (token_hash) {
        token_hash -> Text,
        topic -> Text,
        user_id -> Uuid,
        expires_at -> Timestamptz,
    }
}

diesel::table! {
    transcriptions (recording_id) {
        recording_id -> Text,
        status -> Text,
        provider -> Text,
        model -> Nullable<Text>,
        language -> Nullable<Text>,
        text -> Nullable<Text>,
        words -> Nullable<Jsonb>,
        word_count -> Int4,
        error -> Nullable<Text>,
        attempts -> Int4,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
        completed_at -> Nullable<Timestamptz>,
    }
}

diesel::table! {
    user_roles (user_id, role_id) {
        user_id -> Uuid,
        role_id -> Int4,
    }
}

diesel::table! {
    users (id) {
        id -> Uuid,
        email -> Text,
        display_name -> Text,
        password_hash -> Text,
        active -> Bool,
        created_at -> Timestamptz,
        updated_at -> Timestamptz,
    }
}

diesel::joinable!(api_tokens -> users (user_id));
diesel::joinable!(audit_batch_items -> audit_batches (batch_id));
diesel::joinable!(audit_batches -> audit_configs (audit_config_id));
diesel::joinable!(audit_control_points -> audit_steps (step_id));
diesel::joinable!(audit_reruns -> audits (audit_id));
diesel::joinable!(audit_reruns -> users (requested_by));
diesel::joinable!(audit_step_results -> audits (audit_id));
diesel::joinable!(audit_steps -> audit_configs (audit_config_id));
diesel::joinable!(audits -> audit_configs (audit_config_id));
diesel::joinable!(audits -> fiches (fiche_id));
diesel::joinable!(automation_email_deliveries -> automation_runs (run_id));
diesel::joinable!(automation_runs -> automation_schedules (schedule_id));
diesel::joinable!(automation_webhook_deliveries -> automation_runs (run_id));
diesel::joinable!(chat_messages -> chat_conversations (conversation_id));
diesel::joinable!(fiche_fetch_job_days -> fiche_fetch_jobs (job_id));
diesel::joinable!(pii_access_log -> users (user_id));
diesel::joinable!(recordings -> fiches (fiche_id));
diesel::joinable!(role_permissions -> permissions (permission_id));
diesel::joinable!(role_permissions -> roles (role_id));
diesel::joinable!(stream_tokens -> users (user_id));
diesel::joinable!(transcriptions -> recordings (recording_id));
diesel::joinable!(user_roles -> roles (role_id));
diesel::joinable!(user_roles -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    api_tokens,
    audit_batch_items,
    audit_batches,
    audit_configs,
    audit_control_points,
    audit_reruns,
    audit_step_results,
    audit_steps,
    audits,
    automation_email_deliveries,
    automation_runs,
    automation_schedules,
    automation_webhook_deliveries,
    chat_conversations,
    chat_messages,
    crm_permit_leases,
    events,
    fiche_fetch_job_days,
    fiche_fetch_jobs,
    fiches,
    login_throttle,
    permissions,
    pii_access_log,
    recordings,
    role_permissions,
    roles,
    stream_tokens,
    transcriptions,
    user_roles,
    users,
);
