//! Where a stage runs and what it asks a cluster for: the `resources` section (defaults
//! for every stage) and a stage's own `resources` key over it. Never part of a key: the
//! same stage gives the same bytes on a laptop and on any node.
//!
//! ```yaml
//! executor: slurm             # or local (the default); also --executor, PIPE_EXECUTOR
//! resources:
//!   cpus: 4                   # --cpus-per-task, and the stage's training threads
//!   mem: 8G                   # --mem
//!   time: "2:00:00"           # --time (minutes, H:M:S, D-H, D-H:M:S)
//!   partition: gpu            # --partition; also account, qos
//!   gpus: 1                   # --gres=gpu:N (default 1 for `device: cuda` stages)
//!   sbatch: [--constraint=v100]   # any other sbatch arguments
//!   pack: 10m                 # short stages share jobs up to this long; false: never
//! stages:
//!   report:
//!     report: {of: [base]}
//!     resources: {local: true}    # run in the submitting process, not as a job
//! ```

use serde::{Deserialize, Deserializer, de};

use super::diagnostic::Diagnostics;
use super::node::{KeyPath, Node};
use super::params::{Params, PlainText, error_with_help};

/// Where stages run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutorName {
    Local,
    Slurm,
}

impl ExecutorName {
    pub const NAMES: [&'static str; 2] = ["local", "slurm"];

    pub fn parse(s: &str) -> Option<ExecutorName> {
        match s {
            "local" => Some(ExecutorName::Local),
            "slurm" => Some(ExecutorName::Slurm),
            _ => None,
        }
    }
}

/// What one stage asks of a cluster; `None` leaves it to the cluster's defaults.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Resources {
    #[serde(deserialize_with = "cpus")]
    pub cpus: Option<u32>,
    #[serde(deserialize_with = "mem")]
    pub mem: Option<String>,
    #[serde(deserialize_with = "time")]
    pub time: Option<String>,
    #[serde(deserialize_with = "partition")]
    pub partition: Option<String>,
    #[serde(deserialize_with = "account")]
    pub account: Option<String>,
    #[serde(deserialize_with = "qos")]
    pub qos: Option<String>,
    #[serde(deserialize_with = "gpus")]
    pub gpus: Option<u32>,
    pub sbatch: Vec<String>,
    /// Run in the submitting process rather than as a job; `None`: the kind decides.
    pub local: Option<bool>,
    /// How long a job of several short stages, run one after another, may be
    /// expected to take; `None`: [`DEFAULT_PACK`].
    #[serde(deserialize_with = "pack")]
    pub pack: Option<Pack>,
}

/// Whether a stage may share a job with other short stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Pack {
    /// A job of its own (`pack: false`).
    Off,
    /// With others, up to this many seconds of expected work in all.
    Upto(u64),
}

/// The length of a job of packed stages when the pipeline does not say: long enough
/// that the queue's wait and the job's start are small next to it, short enough to
/// fit the shortest time limits partitions commonly have.
pub const DEFAULT_PACK: Pack = Pack::Upto(600);

impl Resources {
    /// The packing of this stage's jobs, the default filled in.
    pub fn pack(&self) -> Pack {
        self.pack.unwrap_or(DEFAULT_PACK)
    }
}

/// `false`, `true` (the default length), or a length: `10m`, `90s`, `1h`, or minutes.
fn pack<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Pack>, D::Error> {
    let PlainText(text) = PlainText::deserialize(d)?;
    let seconds =
        |number: &str, unit: u64| number.parse::<u64>().ok().filter(|n| *n > 0).and_then(|n| n.checked_mul(unit));
    let pack = match text.as_str() {
        "false" => Some(Pack::Off),
        "true" => Some(DEFAULT_PACK),
        t => match t.strip_suffix('s').map(|n| (n, 1)).or_else(|| t.strip_suffix('m').map(|n| (n, 60))) {
            Some((n, unit)) => seconds(n, unit).map(Pack::Upto),
            None => match t.strip_suffix('h') {
                Some(n) => seconds(n, 3600).map(Pack::Upto),
                None => seconds(t, 60).map(Pack::Upto),
            },
        },
    };
    pack.map(Some).ok_or_else(|| {
        error_with_help(
            format!("`{text}` is not a job length for packing"),
            "write false, or a length such as 10m, 90s or 1h",
        )
    })
}

/// The cores a cluster job asks for when the pipeline does not say.
pub const DEFAULT_CPUS: u32 = 4;

impl Resources {
    pub fn cpus(&self) -> u32 {
        self.cpus.unwrap_or(DEFAULT_CPUS)
    }
}

/// The resources of one stage: the top-level section with the stage's own `resources`
/// over it. Problems are recorded with their place in the file.
pub fn read(defaults: Option<&Node>, own: Option<&Node>, path: &KeyPath, diags: &mut Diagnostics) -> Resources {
    let merged = match (defaults, own) {
        (Some(d), Some(o)) => d.merged(o),
        (Some(n), None) | (None, Some(n)) => n.clone(),
        (None, None) => return Resources::default(),
    };
    Params::new(&merged, path, diags).read().unwrap_or_default()
}

fn cpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    count(d, 1, 4096)
}

fn gpus<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u32>, D::Error> {
    count(d, 0, 64)
}

fn count<'de, D: Deserializer<'de>>(d: D, lo: i64, hi: i64) -> Result<Option<u32>, D::Error> {
    let PlainText(text) = PlainText::deserialize(d)?;
    match text.parse::<i64>() {
        Ok(i) if (lo..=hi).contains(&i) => Ok(Some(i as u32)),
        _ => Err(de::Error::custom(format!("expected a whole number from {lo} to {hi}, found `{text}`"))),
    }
}

/// A string, or a number written without quotes (`mem: 500`, `time: 90`).
fn text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    PlainText::deserialize(d).map(|t| t.0)
}

fn mem<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = text(d)?;
    let digits = s.trim_end_matches(['K', 'M', 'G', 'T', 'k', 'm', 'g', 't']);
    if digits.is_empty() || digits.len() + 1 < s.len() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(error_with_help(format!("`{s}` is not an amount of memory"), "write e.g. 8G or 500M"));
    }
    Ok(Some(s))
}

fn time<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let s = text(d)?;
    if !slurm_time(&s) {
        return Err(error_with_help(
            format!("`{s}` is not a time limit"),
            "write minutes (90), H:M:S (2:00:00), D-H (1-12) or D-H:M:S",
        ));
    }
    Ok(Some(s))
}

fn partition<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    name(d, "partition")
}

fn account<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    name(d, "account")
}

fn qos<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    name(d, "qos")
}

fn name<'de, D: Deserializer<'de>>(d: D, what: &str) -> Result<Option<String>, D::Error> {
    let s = text(d)?;
    if s.is_empty() || s.chars().any(char::is_whitespace) {
        return Err(de::Error::custom(format!("`{s}` is not a {what} name")));
    }
    Ok(Some(s))
}

/// Slurm's time formats: M, M:S, H:M:S, D-H, D-H:M, D-H:M:S.
/// A Slurm time limit in seconds (see [`slurm_time`] for the forms).
pub fn slurm_seconds(s: &str) -> Option<u64> {
    if !slurm_time(s) {
        return None;
    }
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, Some(r)),
        None => (0, None),
    };
    let n: Vec<u64> = rest.unwrap_or(s).split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let secs = match (rest.is_some(), n.as_slice()) {
        // D-H, D-H:M, D-H:M:S
        (true, [h]) => h * 3600,
        (true, [h, m]) => h * 3600 + m * 60,
        (true, [h, m, sec]) => h * 3600 + m * 60 + sec,
        // M, M:S, H:M:S
        (false, [m]) => m * 60,
        (false, [m, sec]) => m * 60 + sec,
        (false, [h, m, sec]) => h * 3600 + m * 60 + sec,
        _ => return None,
    };
    Some(days * 86_400 + secs)
}

fn slurm_time(s: &str) -> bool {
    let num = |x: &str| !x.is_empty() && x.len() <= 6 && x.bytes().all(|b| b.is_ascii_digit());
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (Some(d), r),
        None => (None, s),
    };
    let parts: Vec<&str> = rest.split(':').collect();
    days.is_none_or(num) && parts.iter().all(|p| num(p)) && parts.len() <= 3
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::node::Origin;
    use crate::config::yaml;

    fn parse(defaults: &str, own: &str) -> (Resources, Vec<String>) {
        let d = yaml::parse(defaults, Origin::File).unwrap();
        let o = yaml::parse(own, Origin::File).unwrap();
        let mut diags = Diagnostics::default();
        let r = read(Some(&d), Some(&o), &KeyPath::root().key("resources"), &mut diags);
        (r, diags.items.iter().map(|d| format!("{} {}", d.path.as_str(), d.message)).collect())
    }

    #[test]
    fn a_stage_overrides_the_defaults_key_by_key() {
        let (r, errs) = parse("{cpus: 8, mem: 16G, partition: gpu}", "{cpus: 2, time: '1:00:00', local: true}");
        assert!(errs.is_empty(), "{errs:?}");
        assert_eq!(r.cpus, Some(2));
        assert_eq!(r.mem.as_deref(), Some("16G"));
        assert_eq!(r.time.as_deref(), Some("1:00:00"));
        assert_eq!(r.partition.as_deref(), Some("gpu"));
        assert_eq!(r.local, Some(true));
        assert_eq!(Resources::default().cpus(), DEFAULT_CPUS);
    }

    #[test]
    fn pack_lengths_in_every_form() {
        for (text, want) in [
            ("false", Pack::Off),
            ("true", DEFAULT_PACK),
            ("10m", Pack::Upto(600)),
            ("90s", Pack::Upto(90)),
            ("2h", Pack::Upto(7200)),
            ("15", Pack::Upto(900)),
        ] {
            let (r, errs) = parse(&format!("{{pack: {text}}}"), "{}");
            assert!(errs.is_empty(), "{text}: {errs:?}");
            assert_eq!(r.pack(), want, "{text}");
        }
        assert_eq!(Resources::default().pack(), DEFAULT_PACK);
        let (_, errs) = parse("{pack: soon}", "{}");
        assert!(errs.iter().any(|e| e.contains("resources.pack `soon` is not a job length")), "{errs:?}");
        let (_, errs) = parse("{pack: 0m}", "{}");
        assert_eq!(errs.len(), 1, "{errs:?}");
    }

    #[test]
    fn bad_values_are_named_by_their_key() {
        let (_, errs) = parse("{cpus: 0, mem: lots, time: 'two hours', partition: 'a b', gpus: -1, locl: true}", "{}");
        let joined = errs.join("\n");
        for key in ["cpus", "mem", "time", "partition", "gpus", "locl"] {
            assert!(joined.contains(&format!("resources.{key} ")), "{key}: {joined}");
        }
        assert!(joined.contains("did you mean `local`?") || joined.contains("unknown key `locl`"), "{joined}");
    }

    #[test]
    fn time_limits_in_every_slurm_format() {
        for ok in ["90", "30:00", "2:00:00", "1-12", "1-12:30", "1-12:30:00"] {
            assert!(slurm_time(ok), "{ok}");
        }
        let secs = ["90", "30:00", "2:00:00", "1-12", "1-12:30", "1-12:30:00"].map(slurm_seconds);
        assert_eq!(secs, [5400, 1800, 7200, 129_600, 131_400, 131_400].map(Some));
        for bad in ["", "1:2:3:4", "two", "1-", "-3", "1h"] {
            assert!(!slurm_time(bad), "{bad}");
        }
    }

    #[test]
    fn a_pipeline_gives_each_stage_its_resources_and_the_keys_do_not_see_them() {
        let plain = "stages:\n  a:\n    cmd: {run: 'echo a > a.txt', outs: [a.txt]}\n  \
                     b:\n    matrix: {i: [1, 2]}\n    cmd: {run: 'echo ${i}', outs: []}\n";
        let with = format!(
            "executor: slurm\nresources: {{cpus: 8, partition: long}}\n{}    resources: {{cpus: 2, local: true}}\n",
            plain
        );
        let file = std::path::Path::new("/work/p.yaml");
        let p = crate::config::parse(file, with.as_bytes(), &[], crate::kinds::registry()).unwrap();
        assert_eq!(p.executor, Some(ExecutorName::Slurm));
        let a = &p.stages[p.index_of("a").unwrap()].resources;
        assert_eq!((a.cpus, a.partition.as_deref(), a.local), (Some(8), Some("long"), None));
        let b = &p.stages[p.index_of("b[i=2]").unwrap()].resources;
        assert_eq!((b.cpus, b.partition.as_deref(), b.local), (Some(2), Some("long"), Some(true)));
        let q = crate::config::parse(file, plain.as_bytes(), &[], crate::kinds::registry()).unwrap();
        assert_eq!(q.executor, None);
        let keys = |p: &crate::config::Pipeline| -> Vec<String> {
            let mut stat = crate::digest::StatCache::default();
            let none = vec![None; p.stages.len()];
            (0..p.stages.len())
                .map(|i| crate::engine::plan::stage_key(p, i, &none, &mut stat).unwrap().digest())
                .collect()
        };
        assert_eq!(keys(&p), keys(&q), "where a stage runs is not part of what it computes");
        // Bad values are refused at load time, with their place in the file.
        let bad = format!("{plain}    resources: {{time: soon}}\n");
        let err = crate::config::parse(file, bad.as_bytes(), &[], crate::kinds::registry()).unwrap_err().to_string();
        assert!(err.contains("stages.b.resources.time") && err.contains(":7:"), "{err}");
        let err =
            crate::config::parse(file, format!("executor: pbs\n{plain}").as_bytes(), &[], crate::kinds::registry())
                .unwrap_err();
        assert!(err.to_string().contains("unknown executor `pbs`"), "{err}");
    }
}
