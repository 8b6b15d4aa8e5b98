//! A Prometheus textfile (for node_exporter's textfile collector) describing
//! the last run, written atomically so the collector never reads half a file.

use std::fmt::Write as _;
use std::path::Path;

/// What the last run did. Fields that a failed run cannot know stay `None`.
#[derive(Default)]
pub struct RunMetrics {
    pub exit_code: u8,
    pub end: i64,
    pub duration_seconds: f64,
    pub nodes_ok: Option<usize>,
    pub nodes_partial: Option<usize>,
    pub nodes_failed: Option<usize>,
    pub bytes_added: Option<u64>,
    pub objects_added: Option<usize>,
    pub soonest_cert_expiry: Option<i64>,
}

impl RunMetrics {
    pub fn render(&self) -> String {
        let mut s = String::new();
        let mut gauge = |name: &str, help: &str, value: String| {
            let _ = writeln!(s, "# HELP sprayvault_{name} {help}\n# TYPE sprayvault_{name} gauge\nsprayvault_{name} {value}");
        };
        gauge(
            "last_run_exit_code",
            "Exit code of the last sprayvault backup (0 success, 3 partial, see the README).",
            self.exit_code.to_string(),
        );
        gauge(
            "last_run_success",
            "1 if the last backup succeeded completely.",
            u8::from(self.exit_code == 0).to_string(),
        );
        gauge(
            "last_run_end_timestamp_seconds",
            "When the last backup ended, seconds since the epoch.",
            self.end.to_string(),
        );
        gauge(
            "last_run_duration_seconds",
            "How long the last backup took.",
            format!("{:.3}", self.duration_seconds),
        );
        if let (Some(ok), Some(partial), Some(failed)) =
            (self.nodes_ok, self.nodes_partial, self.nodes_failed)
        {
            let _ = writeln!(
                s,
                "# HELP sprayvault_last_run_nodes Nodes of the last backup by outcome.\n# TYPE sprayvault_last_run_nodes gauge\nsprayvault_last_run_nodes{{state=\"ok\"}} {ok}\nsprayvault_last_run_nodes{{state=\"partial\"}} {partial}\nsprayvault_last_run_nodes{{state=\"failed\"}} {failed}"
            );
        }
        let mut gauge = |name: &str, help: &str, value: String| {
            let _ = writeln!(s, "# HELP sprayvault_{name} {help}\n# TYPE sprayvault_{name} gauge\nsprayvault_{name} {value}");
        };
        if let Some(b) = self.bytes_added {
            gauge(
                "last_run_bytes_added",
                "Bytes of new encrypted objects the last backup added.",
                b.to_string(),
            );
        }
        if let Some(o) = self.objects_added {
            gauge(
                "last_run_objects_added",
                "New encrypted objects the last backup added.",
                o.to_string(),
            );
        }
        if let Some(t) = self.soonest_cert_expiry {
            gauge(
                "certificate_soonest_expiry_timestamp_seconds",
                "The soonest notAfter of any certificate read by the last backup.",
                t.to_string(),
            );
        }
        s
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

    #[test]
    fn renders_textfile_format() {
        let m = RunMetrics {
            exit_code: 3,
            end: 1700000000,
            duration_seconds: 1.5,
            nodes_ok: Some(2),
            nodes_partial: Some(0),
            nodes_failed: Some(1),
            bytes_added: Some(10),
            objects_added: Some(1),
            soonest_cert_expiry: Some(1800000000),
        };
        let t = m.render();
        assert!(t.contains("sprayvault_last_run_exit_code 3\n"));
        assert!(t.contains("sprayvault_last_run_success 0\n"));
        assert!(t.contains("sprayvault_last_run_nodes{state=\"failed\"} 1\n"));
        assert!(t.contains("sprayvault_certificate_soonest_expiry_timestamp_seconds 1800000000\n"));
        for line in t.lines().filter(|l| !l.starts_with('#')) {
            let (name, value) = line.rsplit_once(' ').unwrap();
            assert!(name.starts_with("sprayvault_"), "{line}");
            value.parse::<f64>().unwrap();
        }
    }
}
