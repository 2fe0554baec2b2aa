//! Long calls made up deterministically, and citations of every kind against them: the
//! fixtures of the indexed search's equivalence tests and of `callaudit gate-bench`.
//!
//! A call is a conversation of an advisor (`speaker_0`, long turns of one to three
//! sentences drawn from templates with a few hundred words of vocabulary, figures in
//! digits and in words) and a customer (`speaker_1`, mostly short answers: "Oui,
//! merci.", "D'accord."), 0.4 s per word, plus a short second recording of the same
//! fiche. The same seed and duration always give the same transcripts and citations.

use crate::analysis::Citation;
use crate::transcript::{Transcript, Word, join_words};

/// What a generated citation is meant to exercise.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum CitationKind {
    /// Words of the call, quoted as said, with speaker and time.
    Verbatim,
    /// Words of the call with one or two letters changed (accents, doubled or dropped
    /// letters).
    AsrNoise,
    /// Words of the call with a word replaced and one added.
    Paraphrase,
    /// A sentence the call does not contain.
    Fabricated,
    /// Words of the call, cited for the other speaker.
    WrongSpeaker,
    /// Words of the call, cited ten minutes away.
    WrongTime,
    /// Words of the second recording, cited in the first.
    WrongRecording,
    /// Words of the call with a figure changed.
    FigureChanged,
    /// A customer's answer made of the commonest words ("Oui, merci."): weak anchors.
    CommonWords,
}

impl CitationKind {
    /// Every kind, in the order citations cycle through them.
    pub const ALL: [Self; 9] = [
        Self::Verbatim,
        Self::AsrNoise,
        Self::Verbatim,
        Self::Paraphrase,
        Self::Fabricated,
        Self::WrongSpeaker,
        Self::WrongTime,
        Self::WrongRecording,
        Self::FigureChanged,
    ];
}

/// A deterministic pseudo-random generator (xorshift64*).
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Self {
        Self(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        let x = self.0.wrapping_mul(0x2545_F491_4F6C_DD1D);
        (x >> 33) as usize % n.max(1)
    }
    fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len())]
    }
}

const OPENERS: &[&str] = &[
    "alors", "euh", "donc", "bon", "voilà", "bah", "en fait", "écoutez", "bien", "ensuite",
];
const SUBJECTS: &[&str] = &[
    "je",
    "on",
    "nous",
    "le service client",
    "votre conseiller",
    "la mutuelle",
    "le gestionnaire",
    "mon collègue",
    "l'assureur",
    "votre banque",
];
const VERBS: &[&str] = &[
    "regarde",
    "vérifie",
    "vous envoie",
    "confirme",
    "note",
    "prend en charge",
    "rappelle",
    "propose",
    "résilie",
    "rembourse",
    "enregistre",
    "met à jour",
    "valide",
    "transmet",
    "calcule",
    "active",
    "suspend",
    "modifie",
    "renouvelle",
    "signe",
    "prépare",
    "explique",
];
const OBJECTS: &[&str] = &[
    "votre dossier",
    "le devis",
    "la garantie optique",
    "les soins dentaires",
    "l'hospitalisation",
    "le tiers payant",
    "votre cotisation",
    "l'attestation",
    "le contrat",
    "la carte de tiers payant",
    "vos lunettes",
    "le formulaire de résiliation",
    "votre IBAN",
    "le prélèvement",
    "les consultations de spécialistes",
    "la chambre particulière",
    "les prothèses auditives",
    "la médecine douce",
    "le forfait maternité",
    "les orthodonties",
    "la franchise",
    "le délai de carence",
    "les dépassements d'honoraires",
    "la pharmacie",
    "les analyses de laboratoire",
    "le bilan de santé",
    "la cure thermale",
    "la téléconsultation",
    "le relevé de prestations",
    "l'avenant",
    "la clause bénéficiaire",
    "le mandat SEPA",
    "votre espace adhérent",
    "les ayants droit",
    "le justificatif de domicile",
    "la notice d'information",
    "le tableau de garanties",
    "la période d'essai",
    "le certificat de radiation",
    "la portabilité",
];
const TAILS: &[&str] = &[
    "par mail",
    "demain",
    "dans la journée",
    "cette semaine",
    "pour le moment",
    "sans frais",
    "à partir du mois prochain",
    "comme convenu",
    "si vous êtes d'accord",
    "tout de suite",
    "par courrier",
    "avant la fin du mois",
    "dès réception",
    "sous quarante-huit heures",
    "avec votre accord",
    "sur votre espace",
    "au plus tard lundi",
    "en recommandé",
];
const FIGURES: &[&str] = &[
    "pour 29,90 euros par mois",
    "pour trente-neuf euros par mois",
    "à quatre-vingts pour cent",
    "le 15 mars",
    "le premier du mois prochain",
    "avec une franchise de 50 euros",
    "sur une durée de douze mois",
    "à hauteur de 150 %",
    "pour un total de 1 200 euros",
    "au numéro 06 12 34 56 78",
];
const ANSWERS: &[&str] = &[
    "Oui.",
    "D'accord.",
    "Oui, merci.",
    "Très bien.",
    "Ah bon ?",
    "Je vois.",
    "Oui oui.",
    "Hmm.",
    "C'est noté.",
    "Merci beaucoup.",
    "Oui, d'accord.",
    "Non, ça va.",
    "Parfait.",
];
const CUSTOMER: &[&str] = &[
    "Et ça me coûtera combien par mois ?",
    "Je voudrais surtout être bien remboursée pour les lunettes.",
    "Mon mari a déjà une mutuelle par son employeur.",
    "Vous pouvez me renvoyer le document, je ne l'ai pas reçu.",
    "Je préfère réfléchir avant de signer quoi que ce soit.",
    "Est-ce que les enfants sont couverts aussi ?",
];
const FABRICATED: &[&str] = &[
    "Je vous garantis un remboursement intégral de vos lunettes dès demain",
    "Le premier mois vous est offert et sans aucun engagement de durée",
    "Nous prenons en charge cent pour cent des implants sans plafond",
    "Votre ancienne mutuelle sera résiliée automatiquement par nos soins ce soir",
];

/// One generated turn: its speaker and its words' range.
struct Turn {
    speaker: usize,
    words: std::ops::Range<usize>,
}

fn advisor_sentence(rng: &mut Rng) -> String {
    let mut parts: Vec<&str> = Vec::new();
    if rng.below(2) == 0 {
        parts.push(rng.pick(OPENERS));
    }
    parts.push(rng.pick(SUBJECTS));
    parts.push(rng.pick(VERBS));
    parts.push(rng.pick(OBJECTS));
    if rng.below(3) > 0 {
        parts.push(rng.pick(TAILS));
    }
    if rng.below(4) == 0 {
        parts.push(rng.pick(FIGURES));
    }
    let mut sentence = parts.join(" ");
    if let Some(first) = sentence.get(..1) {
        sentence = first.to_uppercase() + &sentence[1..];
    }
    sentence.push(if rng.below(6) == 0 { '?' } else { '.' });
    sentence
}

fn generate(id: &str, seconds: f64, seed: u64) -> (Transcript, Vec<Turn>) {
    let mut rng = Rng::new(seed);
    let mut words: Vec<Word> = Vec::new();
    let mut turns: Vec<Turn> = Vec::new();
    let mut t = 0.0;
    let mut speaker = 0;
    while t < seconds {
        let text = if speaker == 0 {
            (0..1 + rng.below(3))
                .map(|_| advisor_sentence(&mut rng))
                .collect::<Vec<_>>()
                .join(" ")
        } else if rng.below(5) == 0 {
            rng.pick(CUSTOMER).to_string()
        } else {
            rng.pick(ANSWERS).to_string()
        };
        let first = words.len();
        for w in text.split_whitespace() {
            words.push(Word {
                text: w.to_string(),
                start_s: t,
                end_s: t + 0.35,
                speaker: Some(format!("speaker_{speaker}")),
            });
            t += 0.4;
        }
        turns.push(Turn {
            speaker,
            words: first..words.len(),
        });
        t += 0.8;
        speaker = 1 - speaker;
    }
    let text = join_words(words.iter().map(|w| w.text.as_str()));
    let transcript = Transcript {
        recording_id: id.to_string(),
        language: Some("fr".into()),
        text,
        words,
    };
    (transcript, turns)
}

/// The transcripts of a fiche: a call of `minutes` (`rec-main`) and a three-minute
/// second call (`rec-second`).
pub fn fiche(minutes: f64, seed: u64) -> Vec<Transcript> {
    vec![
        generate("rec-main", minutes * 60.0, seed).0,
        generate("rec-second", 180.0, seed ^ 0xA5A5).0,
    ]
}

/// `count` citations of `fiche(minutes, seed)`, cycling through the kinds (plus one
/// [`CitationKind::CommonWords`] in eight).
pub fn citations(minutes: f64, seed: u64, count: usize) -> Vec<(CitationKind, Citation)> {
    let (main, main_turns) = generate("rec-main", minutes * 60.0, seed);
    let (second, second_turns) = generate("rec-second", 180.0, seed ^ 0xA5A5);
    let mut rng = Rng::new(seed ^ 0x5EED);
    let mut out = Vec::with_capacity(count);
    for i in 0..count {
        let kind = if i % 8 == 7 {
            CitationKind::CommonWords
        } else {
            CitationKind::ALL[i % CitationKind::ALL.len()]
        };
        let (transcript, turns) = if kind == CitationKind::WrongRecording {
            (&second, &second_turns)
        } else {
            (&main, &main_turns)
        };
        let wanted_speaker = usize::from(kind == CitationKind::CommonWords);
        let min_words = if kind == CitationKind::CommonWords {
            2
        } else {
            6
        };
        let mut turn = &turns[rng.below(turns.len())];
        for _ in 0..1000 {
            if turn.speaker == wanted_speaker && turn.words.len() >= min_words {
                break;
            }
            turn = &turns[rng.below(turns.len())];
        }
        let span = turn.words.len().min(4 + rng.below(10)).max(1);
        let from = turn.words.start + rng.below(turn.words.len() - span + 1);
        let words = &transcript.words[from..from + span];
        let mut quote = join_words(words.iter().map(|w| w.text.as_str()));
        let mut start_s = words[0].start_s + rng.below(7) as f64 - 3.0;
        let mut speaker = format!("speaker_{}", turn.speaker);
        let recording_id = "rec-main".to_string();
        match kind {
            CitationKind::Verbatim | CitationKind::CommonWords => {}
            CitationKind::AsrNoise => quote = asr_noise(&quote, &mut rng),
            CitationKind::Paraphrase => {
                let mut ws: Vec<&str> = quote.split_whitespace().collect();
                let at = rng.below(ws.len());
                ws[at] = rng.pick(&["vraiment", "effectivement", "bien sûr"]);
                ws.insert(rng.below(ws.len()), "aussi");
                quote = ws.join(" ");
            }
            CitationKind::Fabricated => quote = rng.pick(FABRICATED).to_string(),
            CitationKind::WrongSpeaker => speaker = format!("speaker_{}", 1 - turn.speaker),
            CitationKind::WrongTime => start_s += 600.0,
            // Words of rec-second, cited as rec-main's.
            CitationKind::WrongRecording => {}
            CitationKind::FigureChanged => {
                // The words before a figure of the call, then the figure changed.
                for _ in 0..5000 {
                    let t = &turns[rng.below(turns.len())];
                    let text = join_words(
                        transcript.words[t.words.clone()]
                            .iter()
                            .map(|w| w.text.as_str()),
                    );
                    let Some((at, figure)) =
                        FIGURES.iter().find_map(|f| text.find(f).map(|at| (at, *f)))
                    else {
                        continue;
                    };
                    let before: Vec<&str> = text[..at].split_whitespace().collect();
                    let lead = before[before.len().saturating_sub(3)..].join(" ");
                    quote = format!("{lead} {}", changed_figure(figure));
                    start_s = transcript.words[t.words.start].start_s;
                    speaker = format!("speaker_{}", t.speaker);
                    break;
                }
            }
        }
        out.push((
            kind,
            Citation {
                quote,
                recording_id,
                start_s: Some(start_s.max(0.0)),
                speaker: Some(speaker),
            },
        ));
    }
    out
}

/// A figure phrase of [`FIGURES`] with its figure changed.
fn changed_figure(figure: &str) -> String {
    figure
        .replace("29", "19")
        .replace("trente", "quarante")
        .replace("quatre-vingts", "soixante")
        .replace("15", "25")
        .replace("premier", "deux")
        .replace("50", "70")
        .replace("douze", "dix")
        .replace("1 200", "1 400")
        .replace("78", "79")
}

/// One or two ASR-sized changes: an accent dropped, a letter doubled or dropped.
fn asr_noise(quote: &str, rng: &mut Rng) -> String {
    let mut chars: Vec<char> = quote.chars().collect();
    for _ in 0..1 + rng.below(2) {
        let letters: Vec<usize> = (0..chars.len())
            .filter(|&i| chars[i].is_alphabetic())
            .collect();
        if letters.is_empty() {
            break;
        }
        let at = letters[rng.below(letters.len())];
        match rng.below(3) {
            0 => {
                chars[at] = match chars[at] {
                    'é' | 'è' | 'ê' => 'e',
                    'à' => 'a',
                    c => c,
                }
            }
            1 => chars.insert(at, chars[at]),
            _ => {
                chars.remove(at);
            }
        }
    }
    chars.into_iter().collect()
}
