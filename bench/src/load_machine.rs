//! What every load mode prints about where it ran: the CPU, its cores, the memory, the
//! load average before and after (the machine is often shared: a figure means little
//! without it), the build profile and the commit. Read from Linux `/proc` and `git`.

use serde::Serialize;

/// The machine a load mode ran on.
#[derive(Debug, Clone, Serialize)]
pub struct Machine {
    /// `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Logical CPUs this process may use.
    pub cores: usize,
    /// `MemTotal`, GiB.
    pub ram_gib: f64,
    /// 1, 5 and 15-minute load averages when the mode started.
    pub load_before: [f64; 3],
    /// The same when it ended.
    pub load_after: Option<[f64; 3]>,
    /// `release` or `debug` (a debug build is not a benchmark).
    pub profile: &'static str,
    /// `git rev-parse --short HEAD` of the working directory, `+dirty` when it has
    /// uncommitted changes; `unknown` outside a checkout.
    pub commit: String,
}

impl Machine {
    /// Reads everything but the load after.
    pub fn now() -> Self {
        let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
        let meminfo = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
        Machine {
            cpu_model: cpu_model(&cpuinfo).unwrap_or_else(|| "unknown".into()),
            cores: std::thread::available_parallelism().map_or(1, usize::from),
            ram_gib: mem_total_kib(&meminfo).map_or(0.0, |k| {
                (k as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0
            }),
            load_before: load_average(),
            load_after: None,
            profile: if cfg!(debug_assertions) {
                "debug"
            } else {
                "release"
            },
            commit: commit(),
        }
    }

    /// Records the load average at the end.
    pub fn finish(&mut self) {
        self.load_after = Some(load_average());
    }

    /// One line for a table's header.
    pub fn line(&self) -> String {
        let load = |l: [f64; 3]| format!("{:.2} {:.2} {:.2}", l[0], l[1], l[2]);
        format!(
            "machine: {} × {} cores, {:.1} GiB RAM; load average before {} after {}; {} \
             build; commit {}",
            self.cpu_model,
            self.cores,
            self.ram_gib,
            load(self.load_before),
            self.load_after.map_or_else(|| "-".into(), load),
            self.profile,
            self.commit
        )
    }
}

fn cpu_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .find_map(|l| l.strip_prefix("model name"))
        .and_then(|v| v.split_once(':'))
        .map(|(_, v)| v.split_whitespace().collect::<Vec<_>>().join(" "))
}

fn mem_total_kib(meminfo: &str) -> Option<u64> {
    meminfo
        .lines()
        .find_map(|l| l.strip_prefix("MemTotal:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

/// `/proc/loadavg`: `0.52 0.58 0.59 1/467 12345`.
fn load_average() -> [f64; 3] {
    let raw = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    let mut it = raw
        .split_whitespace()
        .map(|v| v.parse::<f64>().unwrap_or(0.0));
    [
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
        it.next().unwrap_or(0.0),
    ]
}

fn commit() -> String {
    let git = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .stderr(std::process::Stdio::null())
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match git(&["rev-parse", "--short", "HEAD"]) {
        Some(head) if !head.is_empty() => {
            let dirty = git(&["status", "--porcelain", "--untracked-files=no"])
                .is_some_and(|s| !s.is_empty());
            if dirty { format!("{head}+dirty") } else { head }
        }
        _ => "unknown".into(),
    }
}

/// Resident memory now (`VmRSS`) of process `pid`, bytes.
pub fn rss_bytes(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next())
                .and_then(|v| v.parse::<u64>().ok())
        })
        .map_or(0, |kib| kib * 1024)
}

/// Raises this process's soft limit of open files to at least `wanted` (up to the hard
/// limit); children started afterwards (the api) inherit it. Returns the soft limit now.
pub fn raise_open_files(wanted: u64) -> anyhow::Result<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE)?;
    if soft >= wanted {
        return Ok(soft);
    }
    let target = wanted.min(hard);
    setrlimit(Resource::RLIMIT_NOFILE, target, hard)?;
    if target < wanted {
        anyhow::bail!(
            "this process may open at most {hard} files (hard RLIMIT_NOFILE); the mode needs \
             about {wanted}: raise it (ulimit -Hn) or use fewer subscribers"
        );
    }
    Ok(target)
}

/// Nearest-rank percentile of sorted values, ms with one decimal.
pub fn percentile_ms(sorted: &[std::time::Duration], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    let d = sorted[rank.clamp(1, sorted.len()) - 1];
    (d.as_secs_f64() * 10_000.0).round() / 10.0
}

/// Mebibytes with one decimal.
pub fn mib(bytes: u64) -> f64 {
    (bytes as f64 / (1024.0 * 1024.0) * 10.0).round() / 10.0
}

/// `x` rounded to `decimals`.
pub fn round(x: f64, decimals: i32) -> f64 {
    let f = 10f64.powi(decimals);
    (x * f).round() / f
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_cpu_model_and_memory_are_read_from_proc() {
        let cpuinfo = "processor\t: 0\nmodel name\t: Intel(R) Xeon(R)  CPU @ 2.20GHz\nflags: x\n";
        assert_eq!(
            cpu_model(cpuinfo).as_deref(),
            Some("Intel(R) Xeon(R) CPU @ 2.20GHz")
        );
        assert_eq!(
            mem_total_kib("MemTotal:       24576000 kB\nMemFree: 1 kB\n"),
            Some(24_576_000)
        );
    }

    #[test]
    fn percentiles_use_the_nearest_rank_in_ms() {
        let sorted: Vec<Duration> = (1..=200).map(Duration::from_millis).collect();
        assert_eq!(percentile_ms(&sorted, 50.0), 100.0);
        assert_eq!(percentile_ms(&sorted, 99.0), 198.0);
        assert_eq!(percentile_ms(&[], 99.0), 0.0);
    }

    #[test]
    fn this_machine_is_described() {
        let mut m = Machine::now();
        m.finish();
        assert!(m.cores >= 1);
        assert!(m.line().contains("cores"));
        assert!(rss_bytes(std::process::id()) > 0);
    }
}
