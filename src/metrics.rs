//! A Prometheus textfile (for node_exporter's textfile collector) describing
//! the last backup of one vault, written atomically so the collector never
//! reads half a file.
//!
//! Names follow Prometheus' conventions: base units (seconds, bytes) as
//! suffixes, `_timestamp_seconds` for points in time, `_info` for the build.
//! Every value describes the last run, so every family is a gauge (there are
//! no counters, hence no `_total`). Every sample carries a `vault` label (the
//! vault's directory), so one host backing up several vaults into one
//! collector directory gets distinct series rather than a collector error.

use std::fmt::Write as _;
use std::path::Path;

/// The newest etcd snapshot in the vault after the run.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SnapshotMetrics {
    /// Unix seconds.
    pub taken: i64,
    pub size_bytes: u64,
    pub revision: u64,
}

/// What the last run did. Fields that a failed run cannot know stay `None`.
#[derive(Default)]
pub struct RunMetrics {
    /// The vault's directory, the `vault` label of every sample.
    pub vault: String,
    /// `run="etcd-snapshot"` on every sample of an etcd-only run, so that
    /// its file and the nightly backup's never give the collector the same
    /// series twice; `None` for the backup.
    pub run: Option<String>,
    pub exit_code: u8,
    pub end: i64,
    pub duration_seconds: f64,
    pub nodes_ok: Option<usize>,
    pub nodes_partial: Option<usize>,
    pub nodes_failed: Option<usize>,
    pub bytes_added: Option<u64>,
    pub objects_added: Option<usize>,
    pub soonest_cert_expiry: Option<i64>,
    /// Whether this run's etcd snapshot succeeded; `None` when none was tried.
    pub etcd_snapshot_ok: Option<bool>,
    /// The newest snapshot in the vault (this run's or an older one).
    pub etcd_snapshot: Option<SnapshotMetrics>,
}

/// The metric names, one place for the code, the README and the alert rules.
pub mod names {
    pub const BUILD_INFO: &str = "sprayvault_build_info";
    pub const EXIT_CODE: &str = "sprayvault_last_run_exit_code";
    pub const SUCCESS: &str = "sprayvault_last_run_success";
    pub const END: &str = "sprayvault_last_run_end_timestamp_seconds";
    pub const DURATION: &str = "sprayvault_last_run_duration_seconds";
    pub const NODES: &str = "sprayvault_last_run_nodes";
    pub const ADDED_BYTES: &str = "sprayvault_last_run_added_bytes";
    pub const ADDED_OBJECTS: &str = "sprayvault_last_run_added_objects";
    pub const ETCD_SNAPSHOT_SUCCESS: &str = "sprayvault_last_run_etcd_snapshot_success";
    pub const CERT_EXPIRY: &str = "sprayvault_certificate_soonest_expiry_timestamp_seconds";
    pub const ETCD_TAKEN: &str = "sprayvault_etcd_snapshot_timestamp_seconds";
    pub const ETCD_SIZE: &str = "sprayvault_etcd_snapshot_size_bytes";
    pub const ETCD_REVISION: &str = "sprayvault_etcd_snapshot_revision";
}

/// A label value as the text format wants it: `\`, `"` and newlines escaped.
fn escape(value: &str) -> String {
    let mut s = String::with_capacity(value.len());
    for c in value.chars() {
        match c {
            '\\' => s.push_str("\\\\"),
            '"' => s.push_str("\\\""),
            '\n' => s.push_str("\\n"),
            c => s.push(c),
        }
    }
    s
}

struct Text {
    out: String,
    /// The labels every sample carries (`vault`, and `run` when set).
    common: String,
}

impl Text {
    fn family(&mut self, name: &str, help: &str, samples: &[(&[(&str, &str)], String)]) {
        let _ = writeln!(self.out, "# HELP {name} {help}\n# TYPE {name} gauge");
        for (labels, value) in samples {
            let mut l = self.common.clone();
            for (k, v) in labels.iter() {
                let _ = write!(l, ",{k}=\"{}\"", escape(v));
            }
            let _ = writeln!(self.out, "{name}{{{l}}} {value}");
        }
    }

    fn gauge(&mut self, name: &str, help: &str, value: String) {
        self.family(name, help, &[(&[], value)]);
    }
}

impl RunMetrics {
    pub fn render(&self) -> String {
        use names::*;
        let mut common = format!("vault=\"{}\"", escape(&self.vault));
        if let Some(run) = &self.run {
            let _ = write!(common, ",run=\"{}\"", escape(run));
        }
        let mut t = Text {
            out: String::new(),
            common,
        };
        t.family(
            BUILD_INFO,
            "sprayvault's version; always 1.",
            &[(&[("version", env!("CARGO_PKG_VERSION"))], "1".into())],
        );
        t.gauge(
            EXIT_CODE,
            "Exit code of the last sprayvault run (0 success, 3 partial; see the manual); run=\"etcd-snapshot\" marks an etcd-only run.",
            self.exit_code.to_string(),
        );
        t.gauge(
            SUCCESS,
            "1 if the last run succeeded completely.",
            u8::from(self.exit_code == 0).to_string(),
        );
        t.gauge(
            END,
            "When the last run ended, seconds since the epoch.",
            self.end.to_string(),
        );
        t.gauge(
            DURATION,
            "How long the last run took.",
            format!("{:.3}", self.duration_seconds),
        );
        if let (Some(ok), Some(partial), Some(failed)) =
            (self.nodes_ok, self.nodes_partial, self.nodes_failed)
        {
            t.family(
                NODES,
                "Nodes of the last backup by outcome.",
                &[
                    (&[("state", "ok")], ok.to_string()),
                    (&[("state", "partial")], partial.to_string()),
                    (&[("state", "failed")], failed.to_string()),
                ],
            );
        }
        if let Some(b) = self.bytes_added {
            t.gauge(
                ADDED_BYTES,
                "Bytes of new encrypted objects the last run added.",
                b.to_string(),
            );
        }
        if let Some(o) = self.objects_added {
            t.gauge(
                ADDED_OBJECTS,
                "New encrypted objects the last run added.",
                o.to_string(),
            );
        }
        if let Some(ok) = self.etcd_snapshot_ok {
            t.gauge(
                ETCD_SNAPSHOT_SUCCESS,
                "1 if the last run took an etcd snapshot, 0 if every member failed.",
                u8::from(ok).to_string(),
            );
        }
        if let Some(c) = self.soonest_cert_expiry {
            t.gauge(
                CERT_EXPIRY,
                "The soonest notAfter of any certificate read by the last backup.",
                c.to_string(),
            );
        }
        if let Some(s) = &self.etcd_snapshot {
            t.gauge(
                ETCD_TAKEN,
                "When the newest etcd snapshot in the vault was taken, seconds since the epoch.",
                s.taken.to_string(),
            );
            t.gauge(
                ETCD_SIZE,
                "Size of the newest etcd snapshot in the vault (the snapshot file, before encryption).",
                s.size_bytes.to_string(),
            );
            t.gauge(
                ETCD_REVISION,
                "etcd revision of the newest snapshot in the vault.",
                s.revision.to_string(),
            );
        }
        t.out
    }

    /// Writes the textfile atomically (temporary file, then rename).
    pub fn write(&self, path: &Path) -> std::io::Result<()> {
        let dir = path
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().to_string())
            .unwrap_or_else(|| "sprayvault.prom".into());
        let tmp = dir.join(format!(".{name}.{}", std::process::id()));
        std::fs::write(&tmp, self.render())?;
        std::fs::rename(&tmp, path).inspect_err(|_| {
            let _ = std::fs::remove_file(&tmp);
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> RunMetrics {
        RunMetrics {
            vault: "/var/lib/sprayvault/vault".into(),
            run: None,
            exit_code: 3,
            end: 1700000000,
            duration_seconds: 1.5,
            nodes_ok: Some(2),
            nodes_partial: Some(0),
            nodes_failed: Some(1),
            bytes_added: Some(10),
            objects_added: Some(1),
            soonest_cert_expiry: Some(1800000000),
            etcd_snapshot_ok: Some(true),
            etcd_snapshot: Some(SnapshotMetrics {
                taken: 1699999990,
                size_bytes: 20512,
                revision: 4711,
            }),
        }
    }

    /// An etcd-only run's file never repeats a series of the backup's file:
    /// every sample carries run="etcd-snapshot".
    #[test]
    fn an_etcd_only_run_labels_every_sample() {
        let backup = full().render();
        let hourly = RunMetrics {
            run: Some("etcd-snapshot".into()),
            ..full()
        }
        .render();
        let series = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| !l.starts_with('#'))
                .map(|l| l.rsplit_once(' ').unwrap().0.to_string())
                .collect()
        };
        for s in series(&hourly) {
            assert!(s.contains(",run=\"etcd-snapshot\""), "{s}");
            assert!(!series(&backup).contains(&s), "{s}");
        }
        // The same HELP and TYPE lines, so a collector merges the two files.
        let meta = |text: &str| -> Vec<String> {
            text.lines()
                .filter(|l| l.starts_with('#'))
                .map(str::to_string)
                .collect()
        };
        assert_eq!(meta(&hourly), meta(&backup));
    }

    #[test]
    fn renders_textfile_format() {
        let t = full().render();
        let v = "vault=\"/var/lib/sprayvault/vault\"";
        for want in [
            format!(
                "sprayvault_build_info{{{v},version=\"{}\"}} 1\n",
                env!("CARGO_PKG_VERSION")
            ),
            format!("sprayvault_last_run_exit_code{{{v}}} 3\n"),
            format!("sprayvault_last_run_success{{{v}}} 0\n"),
            format!("sprayvault_last_run_nodes{{{v},state=\"failed\"}} 1\n"),
            format!("sprayvault_last_run_added_bytes{{{v}}} 10\n"),
            format!("sprayvault_certificate_soonest_expiry_timestamp_seconds{{{v}}} 1800000000\n"),
            format!("sprayvault_etcd_snapshot_timestamp_seconds{{{v}}} 1699999990\n"),
            format!("sprayvault_etcd_snapshot_size_bytes{{{v}}} 20512\n"),
            format!("sprayvault_etcd_snapshot_revision{{{v}}} 4711\n"),
        ] {
            assert!(t.contains(&want), "{want} missing from\n{t}");
        }
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("sprayvault_"), "{line}");
            assert!(name.contains(v), "{line}");
            value.parse::<f64>().unwrap();
        }
    }

    #[test]
    fn a_failed_run_says_only_what_it_knows() {
        let m = RunMetrics {
            vault: "v".into(),
            exit_code: 1,
            ..Default::default()
        };
        let t = m.render();
        assert!(t.contains("sprayvault_last_run_success{vault=\"v\"} 0\n"));
        assert!(!t.contains("sprayvault_last_run_nodes"));
        assert!(!t.contains("sprayvault_etcd_snapshot"));
    }

    #[test]
    fn label_values_are_escaped() {
        let m = RunMetrics {
            vault: "/srv/a\"b\\c\nd".into(),
            ..Default::default()
        };
        assert!(m
            .render()
            .contains("sprayvault_last_run_exit_code{vault=\"/srv/a\\\"b\\\\c\\nd\"} 0\n"));
    }
}
