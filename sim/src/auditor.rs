//! The simulated auditor: decides control point statuses by reading the
//! transcript text it was given (prompt mode) or the tool results it received
//! (tools mode), and cites the utterances it relied on.

use serde_json::{Value, json};

use crate::text::{self, keywords, matched_keywords, normalize, sentences, words};

/// Invented quotes used in fabricate mode; none of them occurs in any
/// built-in transcript.
pub(crate) const FABRICATED_QUOTES: &[&str] = &[
    "Le client confirme avoir reçu toutes les garanties par écrit",
    "Je vous garantis un remboursement intégral de tous vos soins sans aucune exception",
    "Le client déclare avoir lu et approuvé l'ensemble des conditions générales avant l'appel",
    "Nous avons bien noté votre accord écrit pour chacune des options du contrat",
];

/// One piece of transcript the auditor can read.
#[derive(Debug, Clone)]
pub(crate) struct Segment {
    pub recording_id: String,
    pub index: Option<i64>,
    pub speaker: Option<String>,
    pub start_s: Option<f64>,
    pub text: String,
}

/// A quoted piece of evidence.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Citation {
    pub quote: String,
    pub recording_id: String,
    pub start_s: Option<f64>,
    pub speaker: Option<String>,
}

/// Control point status, as in the answer schema.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Statut {
    Present,
    Partiel,
    Absent,
    NonApplicable,
}

impl Statut {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Statut::Present => "PRESENT",
            Statut::Partiel => "PARTIEL",
            Statut::Absent => "ABSENT",
            Statut::NonApplicable => "NON_APPLICABLE",
        }
    }
}

/// The auditor's verdict on one control point.
#[derive(Debug, Clone)]
pub(crate) struct Verdict {
    pub index: Value,
    pub point: String,
    pub statut: Statut,
    pub commentaire: String,
    pub citations: Vec<Citation>,
}

/// Status from the number of matched keywords `m` out of `k`.
fn classify(m: usize, k: usize) -> Statut {
    if k == 0 || m == 0 {
        return Statut::Absent;
    }
    let r = m as f64 / k as f64;
    if r >= 0.6 && m >= k.min(2) {
        Statut::Present
    } else if r >= 0.34 && (k < 4 || m >= 2) {
        Statut::Partiel
    } else {
        Statut::Absent
    }
}

/// Whether a control point only applies "le cas échéant".
fn conditional(point: &str) -> bool {
    let n = normalize(point);
    n.contains("le cas echeant") || n.contains("si applicable") || n.contains("s il y a lieu")
}

/// Whether two segments are consecutive turns of the same recording.
fn adjacent(a: &Segment, b: &Segment) -> bool {
    a.recording_id == b.recording_id
        && match (a.index, b.index) {
            (Some(x), Some(y)) => y == x + 1,
            _ => true,
        }
}

/// Quote for a segment: its best sentence when that sentence carries every
/// matched keyword, the whole utterance otherwise. Always an exact substring.
fn cite(seg: &Segment, keys: &[String]) -> Citation {
    let seg_hits = matched_keywords(keys, &words(&seg.text)).len();
    let mut quote = seg.text.trim();
    let best = sentences(&seg.text)
        .into_iter()
        .map(|s| (matched_keywords(keys, &words(s)).len(), s))
        .max_by_key(|(n, _)| *n);
    if let Some((n, s)) = best
        && n == seg_hits
        && s.split_whitespace().count() >= 3
    {
        quote = s;
    }
    Citation {
        quote: quote.to_owned(),
        recording_id: seg.recording_id.clone(),
        start_s: seg.start_s,
        speaker: seg.speaker.clone(),
    }
}

fn short(s: &str) -> String {
    let c = text::cut_chars(s, 90);
    if c.len() < s.len() {
        format!("{c}…")
    } else {
        c.to_owned()
    }
}

fn fmt_time(t: Option<f64>) -> String {
    t.map(|t| format!(" à {t:.1} s")).unwrap_or_default()
}

/// Evaluates one control point against the segments.
pub(crate) fn evaluate(index: Value, point: &str, segs: &[Segment]) -> Verdict {
    let keys = keywords(point);
    let k = keys.len();
    let hits: Vec<Vec<usize>> = segs
        .iter()
        .map(|s| matched_keywords(&keys, &words(&s.text)))
        .collect();

    // (matched, is_single, position); prefer more matches, then a single
    // utterance, then the earliest.
    let mut best: Option<(usize, bool, usize)> = None;
    let better = |cand: (usize, bool, usize), cur: Option<(usize, bool, usize)>| match cur {
        None => cand.0 > 0,
        Some(c) => cand.0 > c.0 || (cand.0 == c.0 && cand.1 && !c.1),
    };
    for i in 0..segs.len() {
        let cand = (hits[i].len(), true, i);
        if better(cand, best) {
            best = Some(cand);
        }
        if i + 1 < segs.len()
            && adjacent(&segs[i], &segs[i + 1])
            && !hits[i].is_empty()
            && !hits[i + 1].is_empty()
        {
            let mut union = hits[i].clone();
            union.extend(hits[i + 1].iter().copied());
            union.sort_unstable();
            union.dedup();
            let cand = (union.len(), false, i);
            if better(cand, best) {
                best = Some(cand);
            }
        }
    }

    let (m, single, pos) = best.unwrap_or((0, true, 0));
    let mut statut = classify(m, k);
    if statut == Statut::Absent && conditional(point) {
        statut = Statut::NonApplicable;
    }
    let citations: Vec<Citation> = match statut {
        Statut::Present | Statut::Partiel => {
            let mut c = vec![cite(&segs[pos], &keys)];
            if !single && let Some(next) = segs.get(pos + 1) {
                c.push(cite(next, &keys));
            }
            c
        }
        _ => Vec::new(),
    };
    let commentaire = match (statut, citations.first()) {
        (Statut::Present, Some(c)) => format!(
            "Élément retrouvé dans l'enregistrement {}{} : « {} ».",
            c.recording_id,
            fmt_time(c.start_s),
            short(&c.quote)
        ),
        (Statut::Partiel, Some(c)) => {
            let found: Vec<&str> = {
                let mut idx: Vec<usize> = hits[pos].clone();
                if !single && let Some(h) = hits.get(pos + 1) {
                    idx.extend(h.iter().copied());
                }
                idx.sort_unstable();
                idx.dedup();
                idx.into_iter()
                    .filter_map(|i| keys.get(i).map(String::as_str))
                    .collect()
            };
            format!(
                "Point abordé partiellement dans l'enregistrement {} ({} élément(s) sur {} : {}).",
                c.recording_id,
                found.len(),
                k,
                found.join(", ")
            )
        }
        (Statut::NonApplicable, _) => {
            "Point non applicable à cet appel : aucun élément concerné dans la transcription."
                .to_owned()
        }
        _ => "Aucun passage de la transcription ne couvre ce point.".to_owned(),
    };
    Verdict {
        index,
        point: point.to_owned(),
        statut,
        commentaire,
        citations,
    }
}

/// Rewords the citations of `v` as `mode` says; `recordings` are the fiche's recording
/// ids (for [`crate::QuoteMode::OtherRecording`]).
pub(crate) fn distort(v: &mut Verdict, mode: crate::QuoteMode, recordings: &[String]) {
    use crate::QuoteMode;
    for c in &mut v.citations {
        match mode {
            QuoteMode::Verbatim => {}
            QuoteMode::Paraphrase => {
                let words: Vec<&str> = c.quote.split_whitespace().collect();
                let keep = words.len().div_ceil(2).max(1);
                c.quote = format!(
                    "{}, enfin c'est ce qui a été dit en substance à ce moment de l'échange",
                    words[..keep.min(words.len())].join(" ")
                );
            }
            QuoteMode::WrongSpeaker => {
                c.speaker = Some(match c.speaker.as_deref() {
                    Some(crate::dataset::SPEAKER_CONSEILLER) => {
                        crate::dataset::SPEAKER_CLIENT.to_owned()
                    }
                    _ => crate::dataset::SPEAKER_CONSEILLER.to_owned(),
                });
            }
            QuoteMode::ShiftTime => c.start_s = Some(c.start_s.unwrap_or(0.0) + 60.0),
            QuoteMode::OtherRecording => {
                if let Some(other) = recordings.iter().find(|r| **r != c.recording_id) {
                    c.recording_id = other.clone();
                }
            }
            QuoteMode::AsrNoise => c.quote = asr_noise(&c.quote),
        }
    }
}

/// What another speech-to-text run might write: accents dropped, the last letter of
/// every fourth long word doubled. Figures and word boundaries stay.
fn asr_noise(quote: &str) -> String {
    use unicode_normalization::UnicodeNormalization;
    let plain: String = quote
        .nfd()
        .filter(|c| !unicode_normalization::char::is_combining_mark(*c))
        .collect();
    plain
        .split(' ')
        .enumerate()
        .map(|(i, w)| {
            let long = w.chars().filter(|c| c.is_alphabetic()).count() >= 5;
            match w.chars().last() {
                Some(last) if i % 4 == 1 && long && last.is_alphabetic() => format!("{w}{last}"),
                _ => w.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join(" ")
}

/// Turns a verdict into a fabricated PRESENT claim backed by an invented quote:
/// the quote is added to real citations of a PRESENT point, and replaces the
/// citations of any other point.
pub(crate) fn fabricate(v: &mut Verdict, recording_id: &str, n: usize) {
    let quote = FABRICATED_QUOTES[n % FABRICATED_QUOTES.len()];
    let invented = Citation {
        quote: quote.to_owned(),
        recording_id: recording_id.to_owned(),
        start_s: Some(42.0 + 7.5 * n as f64),
        speaker: Some(crate::dataset::SPEAKER_CLIENT.to_owned()),
    };
    if v.statut != Statut::Present {
        v.citations.clear();
    }
    v.citations.push(invented);
    v.statut = Statut::Present;
    v.commentaire = format!("Point validé : « {quote} ».");
}

/// The answer document (`points_controle` + `commentaire`).
pub(crate) fn answer_json(step_name: Option<&str>, verdicts: &[Verdict]) -> Value {
    let count = |s: Statut| verdicts.iter().filter(|v| v.statut == s).count();
    let step = step_name
        .map(|n| format!("Étape « {n} » : "))
        .unwrap_or_default();
    let commentaire = format!(
        "{step}{} point(s) présent(s), {} partiel(s), {} absent(s), {} non applicable(s) sur {}.",
        count(Statut::Present),
        count(Statut::Partiel),
        count(Statut::Absent),
        count(Statut::NonApplicable),
        verdicts.len()
    );
    json!({
        "points_controle": verdicts.iter().map(|v| json!({
            "index": v.index,
            "point": v.point,
            "statut": v.statut.as_str(),
            "commentaire": v.commentaire,
            "citations": v.citations.iter().map(|c| json!({
                "quote": c.quote,
                "recording_id": c.recording_id,
                "start_s": c.start_s,
                "speaker": c.speaker,
            })).collect::<Vec<_>>(),
        })).collect::<Vec<_>>(),
        "commentaire": commentaire,
    })
}

/// Transcript passages a chat context offers for quoting, in order: the text of its
/// timestamped utterance lines (`[12.5 s] speaker_0 : Bonjour…`) and the quotes of its
/// citation lines (`Citation (REC-1, 3.0 s, speaker_0) : « … »`), as callaudit writes
/// them (`domain::chat`). Other text between guillemets (step names, control points) is
/// not transcript, so it is never quoted.
pub(crate) fn quotable_passages(context: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for line in context.lines().map(str::trim) {
        let passage = if line.starts_with('[') && line.contains(" s] ") {
            line.split_once(" : ").map(|(_, text)| text)
        } else if line.starts_with("Citation (") {
            line.rfind('«')
                .zip(line.rfind('»'))
                .filter(|(open, close)| open < close)
                .map(|(open, close)| &line[open + '«'.len_utf8()..close])
        } else {
            None
        };
        if let Some(p) = passage.map(str::trim)
            && p.split_whitespace().count() >= 3
            && !out.iter().any(|o| o == p)
        {
            out.push(p.to_owned());
        }
    }
    out
}

/// Up to two passages to quote for `question`: those sharing the most of its keywords
/// (each cut to its best sentence when that sentence has three words or more), else the
/// first two. Every quote is an exact substring of its passage.
fn quotes_for(question: &str, passages: &[String]) -> Vec<String> {
    let keys = keywords(question);
    let mut scored: Vec<(usize, usize)> = passages
        .iter()
        .enumerate()
        .map(|(i, p)| (matched_keywords(&keys, &words(p)).len(), i))
        .filter(|(n, _)| *n > 0)
        .collect();
    scored.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    let chosen: Vec<usize> = if scored.is_empty() {
        (0..passages.len().min(2)).collect()
    } else {
        scored.iter().take(2).map(|(_, i)| *i).collect()
    };
    chosen
        .into_iter()
        .map(|i| best_sentence(&passages[i], &keys).to_owned())
        .collect()
}

/// The first sentence of three words or more with the most of `keys` when it has one of
/// them, else the whole passage.
fn best_sentence<'a>(passage: &'a str, keys: &[String]) -> &'a str {
    let mut best: Option<(usize, &str)> = None;
    for s in sentences(passage) {
        let n = matched_keywords(keys, &words(s)).len();
        if s.split_whitespace().count() >= 3 && n > 0 && best.is_none_or(|(m, _)| n > m) {
            best = Some((n, s));
        }
    }
    best.map_or(passage, |(_, s)| s)
}

/// A French conversational answer to a chat `question`, from the `context` it was given
/// (the system messages): it names the fiche, mentions what was asked and quotes, between
/// « », up to two passages of the transcript found in the context; with `invented`, it
/// also "quotes" that sentence, which no transcript contains (fabricate mode).
pub(crate) fn chat_answer(question: &str, context: &str, invented: Option<&str>) -> String {
    let q = question.trim();
    if q.is_empty() {
        return "Bonjour ! Je suis l'assistant d'audit qualité. Posez-moi une question sur \
                l'audit ou la fiche."
            .to_owned();
    }
    let topic: Vec<String> = {
        let mut seen: Vec<String> = Vec::new();
        let mut out: Vec<String> = Vec::new();
        for raw in q.split(|c: char| !c.is_alphanumeric()) {
            let n = normalize(raw);
            if n.chars().count() >= 5
                && !keywords(raw).is_empty()
                && !seen.contains(&n)
                && out.len() < 3
            {
                seen.push(n);
                out.push(raw.to_lowercase());
            }
        }
        out
    };
    let fiche = find_token(context, "FICHE-").or_else(|| find_token(q, "FICHE-"));
    let mut out = match fiche {
        Some(f) => format!("D'après les éléments de la fiche {f} dont je dispose"),
        None => "D'après les éléments dont je dispose".to_owned(),
    };
    if topic.is_empty() {
        out.push_str(", voici ce que l'on entend dans l'appel.");
    } else {
        out.push_str(&format!(
            ", au sujet de {}, voici ce que l'on entend dans l'appel.",
            topic.join(", ")
        ));
    }
    let quotes = quotes_for(q, &quotable_passages(context));
    if quotes.is_empty() && invented.is_none() {
        out.push_str(" Je n'ai trouvé aucun passage de la transcription à citer à ce sujet.");
        return out;
    }
    for (n, quote) in quotes.iter().enumerate() {
        let lead = if n == 0 {
            "On entend"
        } else {
            "On entend aussi"
        };
        out.push_str(&format!(" {lead} : « {quote} »."));
    }
    if let Some(invented) = invented {
        out.push_str(&format!(" Le client a aussi déclaré : « {invented} »."));
    }
    out.push_str(" Je vous conseille de vérifier ces passages dans la transcription.");
    out
}

fn find_token(hay: &str, prefix: &str) -> Option<String> {
    let start = hay.find(prefix)?;
    let tok: String = hay[start..]
        .chars()
        .take_while(|c| c.is_ascii_alphanumeric() || *c == '-')
        .collect();
    (tok.len() > prefix.len()).then_some(tok)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{SAMPLE_AUDIT_CONFIG_JSON, dataset::dataset};
    use std::collections::BTreeMap;

    fn segments_of(fiche_id: &str) -> Vec<Segment> {
        let f = dataset().fiche(fiche_id).expect("fiche");
        f.recordings
            .iter()
            .flat_map(|r| {
                r.utterances.iter().enumerate().map(|(i, u)| Segment {
                    recording_id: r.recording_id.clone(),
                    index: Some(i as i64),
                    speaker: Some(u.speaker.clone()),
                    start_s: Some(u.start_s),
                    text: u.text.clone(),
                })
            })
            .collect()
    }

    /// (fiche, control point) -> status, for the sample config.
    fn matrix() -> BTreeMap<(String, String), (Statut, Vec<String>)> {
        let cfg: Value = serde_json::from_str(SAMPLE_AUDIT_CONFIG_JSON).expect("valid config");
        let mut out = BTreeMap::new();
        for f in &dataset().fiches {
            let segs = segments_of(&f.fiche_id);
            for step in cfg["steps"].as_array().expect("steps") {
                for (i, p) in step["control_points"]
                    .as_array()
                    .expect("points")
                    .iter()
                    .enumerate()
                {
                    let p = p.as_str().expect("string");
                    let v = evaluate(json!(i), p, &segs);
                    for c in &v.citations {
                        let rec = f
                            .recordings
                            .iter()
                            .find(|r| r.recording_id == c.recording_id)
                            .expect("rec");
                        assert!(
                            rec.text().contains(&c.quote),
                            "quote not verbatim: {}",
                            c.quote
                        );
                    }
                    out.insert(
                        (f.fiche_id.clone(), p.to_owned()),
                        (
                            v.statut,
                            v.citations
                                .iter()
                                .map(|c| c.quote.clone())
                                .collect::<Vec<_>>(),
                        ),
                    );
                }
            }
        }
        out
    }

    #[test]
    fn sample_config_against_dataset_gives_the_documented_coverage() {
        let m = matrix();
        let expected_gaps: &[(&str, &str, Statut)] = &[
            (
                "FICHE-1002",
                "Le conseiller annonce l'enregistrement de la conversation à des fins de qualité",
                Statut::Absent,
            ),
            (
                "FICHE-1002",
                "Le client donne son consentement à l'enregistrement",
                Statut::Absent,
            ),
            (
                "FICHE-1002",
                "Le conseiller fait préciser les postes de soins prioritaires (optique, dentaire, hospitalisation), le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1002",
                "Le conseiller explique les modalités de résiliation de l'ancien contrat, le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1003",
                "Le conseiller informe du droit de rétractation de quatorze jours",
                Statut::Absent,
            ),
            (
                "FICHE-1004",
                "Le conseiller confirme l'adresse email et le numéro de téléphone du client",
                Statut::Absent,
            ),
            (
                "FICHE-1004",
                "Le conseiller fait préciser les postes de soins prioritaires (optique, dentaire, hospitalisation), le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1005",
                "Le conseiller vérifie l'identité du client : nom, prénom et date de naissance",
                Statut::Absent,
            ),
            (
                "FICHE-1005",
                "Le conseiller fait préciser les postes de soins prioritaires (optique, dentaire, hospitalisation), le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1005",
                "Le conseiller explique les modalités de résiliation de l'ancien contrat, le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1007",
                "Le conseiller se présente avec son nom et sa société",
                Statut::Absent,
            ),
            (
                "FICHE-1007",
                "Le conseiller interroge le client sur sa situation et ses besoins",
                Statut::Absent,
            ),
            (
                "FICHE-1007",
                "Le conseiller identifie la couverture actuelle du client",
                Statut::Absent,
            ),
            (
                "FICHE-1007",
                "Le conseiller fait préciser les postes de soins prioritaires (optique, dentaire, hospitalisation), le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1007",
                "Le conseiller récapitule l'offre souscrite",
                Statut::Absent,
            ),
            (
                "FICHE-1008",
                "Le conseiller informe du droit de rétractation de quatorze jours",
                Statut::Partiel,
            ),
            (
                "FICHE-1008",
                "Le conseiller mentionne l'envoi des documents contractuels par écrit",
                Statut::Partiel,
            ),
            (
                "FICHE-1009",
                "Le conseiller fait préciser les postes de soins prioritaires (optique, dentaire, hospitalisation), le cas échéant",
                Statut::NonApplicable,
            ),
            (
                "FICHE-1010",
                "Le conseiller annonce le prix mensuel de la cotisation",
                Statut::Absent,
            ),
            (
                "FICHE-1010",
                "Le conseiller précise la date d'effet du contrat",
                Statut::Absent,
            ),
            (
                "FICHE-1011",
                "Le conseiller fait préciser les postes de soins prioritaires (optique, dentaire, hospitalisation), le cas échéant",
                Statut::NonApplicable,
            ),
        ];
        let mut problems = Vec::new();
        for ((fiche, point), (statut, quotes)) in &m {
            let want = expected_gaps
                .iter()
                .find(|(f, p, _)| f == fiche && p == point)
                .map(|(_, _, s)| *s)
                .unwrap_or(Statut::Present);
            if want != *statut {
                problems.push(format!(
                    "{fiche} / {point}: got {}, want {} {quotes:?}",
                    statut.as_str(),
                    want.as_str()
                ));
            }
        }
        assert!(
            problems.is_empty(),
            "coverage mismatches:\n{}",
            problems.join("\n")
        );
    }

    /// A recording as the worker stores it: one word per space-separated token, timed
    /// linearly within its utterance, labelled with the utterance's speaker.
    fn domain_transcript(rec: &crate::Recording) -> callaudit_domain::transcript::Transcript {
        let mut words = Vec::new();
        for u in &rec.utterances {
            let tokens: Vec<&str> = u.text.split(' ').filter(|t| !t.is_empty()).collect();
            let step = (u.end_s - u.start_s) / tokens.len().max(1) as f64;
            for (i, t) in tokens.iter().enumerate() {
                let start_s = u.start_s + step * i as f64;
                words.push(callaudit_domain::transcript::Word {
                    text: (*t).to_owned(),
                    start_s,
                    end_s: start_s + step,
                    speaker: Some(u.speaker.clone()),
                });
            }
        }
        callaudit_domain::transcript::Transcript {
            recording_id: rec.recording_id.clone(),
            language: Some("fr".into()),
            text: rec.text(),
            words,
        }
    }

    #[test]
    fn every_citation_of_the_sample_config_passes_evidence_gating() {
        use callaudit_domain::analysis::Citation as Cited;
        use callaudit_domain::evidence::{CitationVerdict, GatingOptions, check_citation};
        let cfg: Value = serde_json::from_str(SAMPLE_AUDIT_CONFIG_JSON).expect("valid config");
        let mut problems = Vec::new();
        for f in &dataset().fiches {
            let transcripts: Vec<_> = f.recordings.iter().map(domain_transcript).collect();
            let segs = segments_of(&f.fiche_id);
            for step in cfg["steps"].as_array().expect("steps") {
                for (i, p) in step["control_points"]
                    .as_array()
                    .expect("points")
                    .iter()
                    .enumerate()
                {
                    let v = evaluate(json!(i), p.as_str().expect("string"), &segs);
                    for c in &v.citations {
                        let check = check_citation(
                            &Cited {
                                quote: c.quote.clone(),
                                recording_id: c.recording_id.clone(),
                                start_s: c.start_s,
                                speaker: c.speaker.clone(),
                            },
                            &transcripts,
                            &GatingOptions::default(),
                        );
                        if check.verdict != CitationVerdict::Verified {
                            problems
                                .push(format!("{}: {:?}: {}", f.fiche_id, c.quote, check.reason));
                        }
                    }
                }
            }
        }
        assert!(problems.is_empty(), "{}", problems.join("\n"));
    }

    #[test]
    fn thresholds_separate_present_partial_and_absent() {
        assert_eq!(classify(2, 2), Statut::Present);
        assert_eq!(classify(1, 2), Statut::Partiel);
        assert_eq!(classify(1, 3), Statut::Absent);
        assert_eq!(classify(3, 4), Statut::Present);
        assert_eq!(classify(2, 4), Statut::Partiel);
        assert_eq!(classify(1, 4), Statut::Absent);
        assert_eq!(classify(0, 0), Statut::Absent);
    }

    #[test]
    fn fabricated_quotes_never_occur_in_the_dataset() {
        for f in &dataset().fiches {
            for r in &f.recordings {
                let t = r.text();
                for q in FABRICATED_QUOTES {
                    assert!(!crate::text::contains_normalized(&t, q));
                }
            }
        }
    }

    #[test]
    fn chat_answer_mentions_the_question() {
        let a = chat_answer(
            "Pourquoi la rétractation est-elle absente ?",
            "audit de la FICHE-1003",
            None,
        );
        assert!(a.contains("FICHE-1003"));
        assert!(a.contains("rétractation"));
    }

    #[test]
    fn a_chat_answer_quotes_the_utterances_of_its_context_that_match_the_question() {
        let context = "Fiche FICHE-1 : 1 enregistrement(s) transcrit(s).\n\
                       Enregistrement REC-1 :\n\
                       [0.0 s] speaker_0 : Bonjour, je suis Marc de la société Assurup.\n\
                       [4.0 s] speaker_1 : Oui bonjour.\n\
                       [6.0 s] speaker_0 : Vous disposez d'un droit de rétractation de quatorze jours. Merci.\n";
        let a = chat_answer(
            "Le droit de rétractation a-t-il été annoncé ?",
            context,
            None,
        );
        assert!(
            a.contains("« Vous disposez d'un droit de rétractation de quatorze jours. »"),
            "{a}"
        );
        assert!(
            !a.contains("« Bonjour, je suis Marc de la société Assurup. »"),
            "{a}"
        );
        let fabricated = chat_answer(
            "Le droit de rétractation ?",
            context,
            Some(FABRICATED_QUOTES[0]),
        );
        assert!(
            fabricated.contains(&format!("« {} »", FABRICATED_QUOTES[0])),
            "{fabricated}"
        );
    }

    #[test]
    fn only_citation_lines_and_utterance_lines_are_quotable() {
        let context = "Étape 1 « Ouverture du contrat » (poids 10) : CONFORME.\n\
                       \x20 Point 0 « Le conseiller se présente » : PRESENT\n\
                       \x20   Citation (REC-1, 3.0 s, speaker_0) : « Bonjour, je suis Marc »\n";
        assert_eq!(quotable_passages(context), vec!["Bonjour, je suis Marc"]);
    }
}
