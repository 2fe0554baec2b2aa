//! CPU time and peak memory of a process, read from Linux `/proc`.

use anyhow::Context;

/// What `/proc` says about a process at one moment.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ProcSample {
    /// User + system CPU seconds since the process started.
    pub cpu_s: f64,
    /// Peak resident set size (`VmHWM`), bytes.
    pub peak_rss_bytes: u64,
}

/// Samples process `pid` (`/proc/<pid>/stat` and `/proc/<pid>/status`).
pub fn sample(pid: u32) -> anyhow::Result<ProcSample> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .with_context(|| format!("reading /proc/{pid}/stat (Linux only)"))?;
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("reading /proc/{pid}/status"))?;
    let ticks = cpu_ticks(&stat).with_context(|| format!("parsing /proc/{pid}/stat"))?;
    Ok(ProcSample {
        cpu_s: ticks as f64 / clock_ticks_per_second() as f64,
        peak_rss_bytes: peak_rss_kib(&status).unwrap_or(0) * 1024,
    })
}

/// CPU seconds of every process whose command line contains `needle` (e.g. the Postgres
/// backends serving one database: `postgres: … user dbname host …`), by pid.
pub fn cpu_of_processes_matching(needle: &str) -> std::collections::BTreeMap<u32, f64> {
    let mut out = std::collections::BTreeMap::new();
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return out;
    };
    for entry in dir.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
            continue;
        };
        if !String::from_utf8_lossy(&cmdline).contains(needle) {
            continue;
        }
        if let Ok(s) = sample(pid) {
            out.insert(pid, s.cpu_s);
        }
    }
    out
}

/// CPU seconds of this process's threads whose name starts with `prefix` (a dedicated
/// runtime's workers, e.g. the simulators').
pub fn cpu_of_own_threads(prefix: &str) -> f64 {
    let Ok(dir) = std::fs::read_dir("/proc/self/task") else {
        return 0.0;
    };
    let ticks: u64 = dir
        .flatten()
        .filter(|t| {
            std::fs::read_to_string(t.path().join("comm")).is_ok_and(|c| c.starts_with(prefix))
        })
        .filter_map(|t| std::fs::read_to_string(t.path().join("stat")).ok())
        .filter_map(|stat| cpu_ticks(&stat))
        .sum();
    ticks as f64 / clock_ticks_per_second() as f64
}

/// utime + stime, in clock ticks. The command name (field 2) may hold spaces and
/// parentheses, so fields are counted from the last `)`.
fn cpu_ticks(stat: &str) -> Option<u64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // rest starts at field 3 (state); utime and stime are fields 14 and 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some(utime + stime)
}

/// `VmHWM:   12345 kB` → 12345.
fn peak_rss_kib(status: &str) -> Option<u64> {
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
}

fn clock_ticks_per_second() -> u64 {
    use nix::unistd::{SysconfVar, sysconf};
    match sysconf(SysconfVar::CLK_TCK) {
        Ok(Some(t)) if t > 0 => u64::try_from(t).unwrap_or(100),
        // USER_HZ, what /proc reports in on every mainstream Linux architecture.
        _ => 100,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_ticks_are_read_after_a_command_name_with_spaces_and_parentheses() {
        let stat = "4242 (tokio (rt) w) S 1 4242 4242 0 -1 4194560 1000 0 0 0 150 25 0 0 20 0 \
                    9 0 1234 1000000 2000 18446744073709551615";
        assert_eq!(cpu_ticks(stat), Some(175));
    }

    #[test]
    fn peak_rss_is_vm_hwm_in_kib() {
        let status =
            "Name:\tcallaudit\nVmPeak:\t  900000 kB\nVmHWM:\t   51200 kB\nVmRSS:\t 40000 kB\n";
        assert_eq!(peak_rss_kib(status), Some(51_200));
    }

    #[test]
    fn this_process_can_be_sampled() {
        let s = sample(std::process::id()).expect("sample self");
        assert!(s.cpu_s >= 0.0);
        assert!(s.peak_rss_bytes > 0);
    }
}
