//! What a trained network is, in the paper's vocabulary, as a type.
//!
//! Its text form (`baseB`, `AnB`, `BnB+`, `random`, `AnB then fine-tuned`) is what
//! `info.json` and the tables show; it is written once from the type and read back into
//! it at the file boundary, so the report works on the type, never on the text.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Treatment {
    /// `base{T}`: trained from scratch on half `T`.
    Base { half: String },
    /// `{S}n{T}`, `+` when fine-tuned: layers 1..n of a base trained on `S`, then
    /// trained on `T`.
    Transfer { from: String, to: String, fine_tuned: bool },
    /// Layers 1..n left at their random initialisation and frozen.
    Random,
    /// A further phase on a network that was itself transferred (`classifier: keep`).
    Continued { first: Box<Treatment>, fine_tuned: bool },
}

impl fmt::Display for Treatment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Treatment::Base { half } => write!(f, "base{half}"),
            Treatment::Transfer { from, to, fine_tuned } => {
                write!(f, "{from}n{to}{}", if *fine_tuned { "+" } else { "" })
            }
            Treatment::Random => f.write_str("random"),
            Treatment::Continued { first, fine_tuned } => {
                write!(f, "{first} then {}", if *fine_tuned { "fine-tuned" } else { "frozen" })
            }
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("`{0}` is not a treatment (baseB, AnB, AnB+, random, or `... then fine-tuned`)")]
pub struct BadTreatment(String);

/// Half names as the split writes them: letters, digits and `_`, never containing `n`
/// ambiguously (the split between source and target is the last `n`).
fn half(s: &str) -> bool {
    !s.is_empty() && s.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

impl FromStr for Treatment {
    type Err = BadTreatment;

    fn from_str(s: &str) -> Result<Treatment, BadTreatment> {
        let bad = || BadTreatment(s.to_string());
        if let Some((first, phase)) = s.rsplit_once(" then ") {
            let fine_tuned = match phase {
                "fine-tuned" => true,
                "frozen" => false,
                _ => return Err(bad()),
            };
            return Ok(Treatment::Continued { first: Box::new(first.parse().map_err(|_| bad())?), fine_tuned });
        }
        if s == "random" {
            return Ok(Treatment::Random);
        }
        if let Some(h) = s.strip_prefix("base").filter(|h| half(h)) {
            return Ok(Treatment::Base { half: h.to_string() });
        }
        let (core, fine_tuned) = s.strip_suffix('+').map_or((s, false), |c| (c, true));
        match core.rsplit_once('n') {
            Some((from, to)) if half(from) && half(to) => {
                Ok(Treatment::Transfer { from: from.to_string(), to: to.to_string(), fine_tuned })
            }
            _ => Err(bad()),
        }
    }
}

impl Serialize for Treatment {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for Treatment {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Treatment, D::Error> {
        String::deserialize(d)?.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_round_trips_and_nonsense_is_refused() {
        for text in
            ["baseB", "baseA", "AnB", "BnB+", "AnA", "random", "AnB then fine-tuned", "BnB+ then frozen then frozen"]
        {
            let t: Treatment = text.parse().unwrap();
            assert_eq!(t.to_string(), text);
        }
        assert_eq!(
            "BnA+".parse::<Treatment>().unwrap(),
            Treatment::Transfer { from: "B".into(), to: "A".into(), fine_tuned: true }
        );
        for bad in ["", "nB", "base", "AnB then", "AnB then melted", "A n B", "AnB++"] {
            assert!(bad.parse::<Treatment>().is_err(), "{bad:?}");
        }
    }
}
