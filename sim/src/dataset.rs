//! The simulated CRM's data: fiches, their recordings and the ground-truth
//! transcripts that the speech-to-text simulator returns.

use std::sync::OnceLock;

use chrono::{DateTime, NaiveDate};
use serde::{Deserialize, Serialize};

use crate::transcripts::{FICHES, GENERATED_CLIENTS, RecSpec};

/// Speaker label of the sales advisor ("conseiller") in every transcript.
pub const SPEAKER_CONSEILLER: &str = "speaker_0";
/// Speaker label of the customer in every transcript.
pub const SPEAKER_CLIENT: &str = "speaker_1";

/// All fiches known to a simulator.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Dataset {
    /// The fiches, ordered by sale date.
    pub fiches: Vec<Fiche>,
}

/// A customer file with its call recordings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Fiche {
    /// Identifier, e.g. `FICHE-1001`.
    pub fiche_id: String,
    /// Sales group, e.g. `NCA` or `MDP`.
    pub groupe: String,
    /// Sale status, e.g. `VALIDEE`, `EN_ATTENTE`, `A_CONTROLER`.
    pub statut: String,
    /// Sale timestamp, RFC 3339 with offset.
    pub date_vente: String,
    /// Product sold.
    pub produit: String,
    /// The sales advisor.
    pub commercial: Commercial,
    /// The customer.
    pub client: Client,
    /// Free-text comments left on the fiche.
    pub commentaires: Vec<Commentaire>,
    /// Call recordings, in chronological order.
    pub recordings: Vec<Recording>,
}

/// The sales advisor of a fiche.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commercial {
    /// Full name.
    pub nom: String,
    /// E-mail address.
    pub email: String,
}

/// The customer of a fiche.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    /// Family name.
    pub nom: String,
    /// Given name.
    pub prenom: String,
    /// E-mail address, when the customer has one.
    pub email: Option<String>,
    /// Phone number (French national format, digits only).
    pub telephone: String,
    /// Birth date, `YYYY-MM-DD`.
    pub date_naissance: String,
    /// Postal code.
    pub code_postal: String,
}

/// A comment on a fiche.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Commentaire {
    /// When it was written, RFC 3339.
    pub date: String,
    /// Who wrote it.
    pub auteur: String,
    /// The comment.
    pub texte: String,
}

/// One call recording with its ground-truth transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    /// Identifier, e.g. `REC-1001-1`.
    pub recording_id: String,
    /// When the call started, RFC 3339.
    pub started_at: String,
    /// Call length in seconds.
    pub duration_s: f64,
    /// `outbound` (advisor called) or `inbound` (customer called).
    pub direction: String,
    /// What was said, in order.
    pub utterances: Vec<Utterance>,
}

/// One speaker turn of a transcript.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Utterance {
    /// `speaker_0` (conseiller) or `speaker_1` (client).
    pub speaker: String,
    /// Start, seconds from the beginning of the recording.
    pub start_s: f64,
    /// End, seconds from the beginning of the recording.
    pub end_s: f64,
    /// The words, single-spaced, with punctuation.
    pub text: String,
}

impl Recording {
    /// The transcript as one string (utterances joined by a space), exactly
    /// what the speech-to-text simulator returns as `text`.
    pub fn text(&self) -> String {
        self.utterances
            .iter()
            .map(|u| u.text.as_str())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

impl Fiche {
    /// The calendar day of the sale (in the sale's own offset).
    pub fn sale_date(&self) -> Option<NaiveDate> {
        DateTime::parse_from_rfc3339(&self.date_vente)
            .ok()
            .map(|d| d.date_naive())
    }
}

impl Dataset {
    /// The fiche with this id.
    pub fn fiche(&self, fiche_id: &str) -> Option<&Fiche> {
        self.fiches.iter().find(|f| f.fiche_id == fiche_id)
    }

    /// The recording with this id, with the fiche it belongs to.
    pub fn recording(&self, recording_id: &str) -> Option<(&Fiche, &Recording)> {
        self.fiches.iter().find_map(|f| {
            f.recordings
                .iter()
                .find(|r| r.recording_id == recording_id)
                .map(|r| (f, r))
        })
    }

    /// Fiches sold on this day that have at least one recording, by sale time.
    pub fn fiches_on(&self, date: NaiveDate) -> Vec<&Fiche> {
        let mut out: Vec<&Fiche> = self
            .fiches
            .iter()
            .filter(|f| !f.recordings.is_empty() && f.sale_date() == Some(date))
            .collect();
        out.sort_by(|a, b| a.date_vente.cmp(&b.date_vente));
        out
    }

    /// Every fiche id, in dataset order.
    pub fn fiche_ids(&self) -> Vec<&str> {
        self.fiches.iter().map(|f| f.fiche_id.as_str()).collect()
    }

    /// Built-in fiches plus `extra` generated ones (`FICHE-GEN-{i}`, i from 1,
    /// two recordings each, sold on 2026-11-10) that recombine the built-in
    /// transcripts.
    pub fn with_generated(extra: usize) -> Dataset {
        let base = dataset();
        let mut fiches = base.fiches.clone();
        let pool: Vec<(&Fiche, &Recording)> = base
            .fiches
            .iter()
            .flat_map(|f| f.recordings.iter().map(move |r| (f, r)))
            .collect();
        if pool.is_empty() {
            return Dataset { fiches };
        }
        for i in 1..=extra {
            let (src_a, rec_a) = pool[(2 * i) % pool.len()];
            let (_, rec_b) = pool[(2 * i + 1) % pool.len()];
            let minute_of_day = 8 * 60 + (i * 7) % 600;
            let (h, m) = (minute_of_day / 60, minute_of_day % 60);
            let (nom, prenom) = GENERATED_CLIENTS[i % GENERATED_CLIENTS.len()];
            let mk_rec = |n: usize, src: &Recording, offset_min: usize| {
                let total = minute_of_day.saturating_sub(40) + offset_min;
                Recording {
                    recording_id: format!("REC-GEN-{i}-{n}"),
                    started_at: format!("2026-11-10T{:02}:{:02}:00+01:00", total / 60, total % 60),
                    duration_s: src.duration_s,
                    direction: src.direction.clone(),
                    utterances: src.utterances.clone(),
                }
            };
            fiches.push(Fiche {
                fiche_id: format!("FICHE-GEN-{i}"),
                groupe: if i % 2 == 0 { "MDP" } else { "NCA" }.to_owned(),
                statut: "VALIDEE".to_owned(),
                date_vente: format!("2026-11-10T{h:02}:{m:02}:00+01:00"),
                produit: src_a.produit.clone(),
                commercial: src_a.commercial.clone(),
                client: Client {
                    nom: nom.to_owned(),
                    prenom: prenom.to_owned(),
                    email: Some(format!(
                        "{}.{}@example.fr",
                        crate::text::normalize(prenom),
                        crate::text::normalize(nom)
                    )),
                    telephone: format!("06{:08}", 10_000_000 + i * 7919 % 89_999_999),
                    date_naissance: format!(
                        "19{:02}-{:02}-{:02}",
                        50 + i % 45,
                        1 + i % 12,
                        1 + i % 28
                    ),
                    code_postal: format!("{:05}", 10_000 + (i * 1237) % 85_000),
                },
                commentaires: vec![Commentaire {
                    date: format!("2026-11-10T{h:02}:{m:02}:00+01:00"),
                    auteur: "Générateur".to_owned(),
                    texte: "Fiche générée pour les tests de charge.".to_owned(),
                }],
                recordings: vec![mk_rec(1, rec_a, 0), mk_rec(2, rec_b, 20)],
            });
        }
        Dataset { fiches }
    }
}

/// The built-in fiches (FICHE-1001 … FICHE-1010), so tests can know ids and
/// transcripts.
pub fn dataset() -> &'static Dataset {
    static DATA: OnceLock<Dataset> = OnceLock::new();
    DATA.get_or_init(build_builtin)
}

fn build_builtin() -> Dataset {
    let mut fiches: Vec<Fiche> = FICHES
        .iter()
        .map(|s| Fiche {
            fiche_id: s.id.to_owned(),
            groupe: s.groupe.to_owned(),
            statut: s.statut.to_owned(),
            date_vente: s.date_vente.to_owned(),
            produit: s.produit.to_owned(),
            commercial: Commercial {
                nom: s.commercial.0.to_owned(),
                email: s.commercial.1.to_owned(),
            },
            client: Client {
                nom: s.client[0].to_owned(),
                prenom: s.client[1].to_owned(),
                email: (!s.client[2].is_empty()).then(|| s.client[2].to_owned()),
                telephone: s.client[3].to_owned(),
                date_naissance: s.client[4].to_owned(),
                code_postal: s.client[5].to_owned(),
            },
            commentaires: s
                .commentaires
                .iter()
                .map(|(d, a, t)| Commentaire {
                    date: (*d).to_owned(),
                    auteur: (*a).to_owned(),
                    texte: (*t).to_owned(),
                })
                .collect(),
            recordings: s.recordings.iter().map(build_recording).collect(),
        })
        .collect();
    fiches.sort_by(|a, b| a.date_vente.cmp(&b.date_vente));
    Dataset { fiches }
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn build_recording(spec: &RecSpec) -> Recording {
    let mut t = 0.6_f64;
    let mut utterances = Vec::with_capacity(spec.lines.len());
    for (i, line) in spec.lines.iter().enumerate() {
        let (speaker, text) = match line.split_once(": ") {
            Some(("C", rest)) => (SPEAKER_CONSEILLER, rest),
            Some(("P", rest)) => (SPEAKER_CLIENT, rest),
            _ => (SPEAKER_CONSEILLER, *line),
        };
        // Single-spaced text so that joining STT words gives it back exactly.
        let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
        let chars = text.chars().count() as f64;
        let duration = 0.7 + chars * 0.064;
        let start = round2(t);
        let end = round2(t + duration);
        utterances.push(Utterance {
            speaker: speaker.to_owned(),
            start_s: start,
            end_s: end,
            text,
        });
        t = end + 0.35 + ((i * 37) % 5) as f64 * 0.12;
    }
    let duration_s = round2(t + 1.2);
    Recording {
        recording_id: spec.id.to_owned(),
        started_at: spec.started_at.to_owned(),
        duration_s,
        direction: spec.direction.to_owned(),
        utterances,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn built_in_dataset_has_realistic_shape() {
        let d = dataset();
        assert!(d.fiches.len() >= 6);
        for f in &d.fiches {
            assert!((1..=3).contains(&f.recordings.len()), "{}", f.fiche_id);
            let day = f.sale_date().expect("valid date");
            // FICHE-1011 (the call full of personal data) is sold apart, on 2026-10-15.
            assert!(day >= NaiveDate::from_ymd_opt(2026, 10, 15).unwrap());
            assert!(day <= NaiveDate::from_ymd_opt(2026, 11, 6).unwrap());
            for r in &f.recordings {
                assert!(
                    (20..=45).contains(&r.utterances.len()),
                    "{} has {}",
                    r.recording_id,
                    r.utterances.len()
                );
                assert!(r.utterances.windows(2).all(|w| w[0].end_s < w[1].start_s));
                assert!(r.utterances.iter().all(|u| u.start_s < u.end_s));
                assert!(r.duration_s > r.utterances.last().unwrap().end_s);
            }
        }
        for day in 2..=6 {
            let n = d
                .fiches_on(NaiveDate::from_ymd_opt(2026, 11, day).unwrap())
                .len();
            assert!(n >= 2, "day {day} has {n} fiches");
        }
    }

    #[test]
    fn generated_fiches_are_dated_on_the_tenth_with_two_recordings() {
        let d = Dataset::with_generated(25);
        let gen_day = d.fiches_on(NaiveDate::from_ymd_opt(2026, 11, 10).unwrap());
        assert_eq!(gen_day.len(), 25);
        assert!(
            gen_day
                .iter()
                .all(|f| f.recordings.len() == 2 && f.fiche_id.starts_with("FICHE-GEN-"))
        );
        assert!(d.recording("REC-GEN-25-2").is_some());
    }
}
