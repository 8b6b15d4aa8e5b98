//! The script that stops, swaps and starts one member, detached on the node,
//! and the states it reports.
//!
//! It runs in a session of its own (`systemd-run --no-block` where systemd
//! runs, else `setsid`), so a dropped ssh connection, or a killed sprayvault,
//! never leaves etcd stopped. It lives in the root-only upload directory
//! `DIR` and talks to sprayvault through files there:
//!
//! - `DIR/state`, replaced atomically, one line (see [`State`]):
//!   `running`, `stopped`, `swapped`, then `done DATA STARTED [WHY]`;
//! - `DIR/decision`, a symlink whose target is the decision, made with
//!   `ln -s` (atomic, and never replaces one already made): `go` or `abort`
//!   from sprayvault, or `timeout` from the script once it has waited
//!   [`ScriptPlan::wait`] seconds from its start. Whoever makes it first
//!   decides, and both sides read what was decided.
//!
//! The rule that keeps "every member is stopped before any is started": a
//! member starts on the restored data only on `go`, which sprayvault gives
//! once every member says `swapped`; on anything else (a stop or swap that
//! failed, `abort`, `timeout`) it moves the restored data back out and its
//! old data back in, and starts etcd on that. Whatever happens, it ends by
//! starting etcd, removing the uploaded snapshot and, unless it is in use,
//! the restored copy: what is left in `DIR` (script, log, state) holds no
//! key material.

use crate::source::remote::shell_quote;

/// File names inside the upload directory.
pub const SCRIPT: &str = "member.sh";
pub const STATE: &str = "state";
pub const DECISION: &str = "decision";
pub const PID: &str = "pid";
pub const LOG: &str = "log";

/// Seconds the script waits for etcd's database lock to go after the stop.
pub const LOCK_WAIT: u64 = 30;

/// What the script of one member needs.
#[derive(Clone, Debug)]
pub struct ScriptPlan<'a> {
    /// The root-only upload directory (holds the snapshot, the script, its files).
    pub dir: &'a str,
    /// The uploaded snapshot, removed at the end.
    pub snapshot: &'a str,
    pub data_dir: &'a str,
    pub restore_dir: &'a str,
    pub aside: &'a str,
    pub stop: &'a str,
    pub start: &'a str,
    /// Seconds the stop and the start command may each take.
    pub step: u64,
    /// Seconds from the script's start after which it stops waiting for the
    /// decision and goes back to the old data.
    pub wait: u64,
}

/// Where the member's data ended up, as `done` reports it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Data {
    /// The restored member directory is in place.
    Restored,
    /// The member's old data is back in place (or was never moved).
    Old,
    /// Moving back failed half way: see the paths in the reason.
    Unknown,
}

/// One line of `DIR/state`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum State {
    /// Started; stopping etcd.
    Running,
    /// etcd is stopped and its database unlocked.
    Stopped,
    /// The restored data is in place; waiting for the decision.
    Swapped,
    /// Finished: etcd was started (or its start command failed).
    Done {
        data: Data,
        started: bool,
        why: Option<String>,
    },
}

impl State {
    /// Reads a state line; `None` for anything else (no state yet).
    pub fn parse(line: &str) -> Option<State> {
        let mut w = line.trim().splitn(4, ' ');
        match w.next()? {
            "running" => Some(State::Running),
            "stopped" => Some(State::Stopped),
            "swapped" => Some(State::Swapped),
            "done" => {
                let data = match w.next()? {
                    "restored" => Data::Restored,
                    "old" => Data::Old,
                    "unknown" => Data::Unknown,
                    _ => return None,
                };
                let started = match w.next()? {
                    "started" => true,
                    "not-started" => false,
                    _ => return None,
                };
                let why = w.next().map(str::trim).filter(|s| !s.is_empty());
                Some(State::Done {
                    data,
                    started,
                    why: why.map(str::to_string),
                })
            }
            _ => None,
        }
    }

    /// Stopped and swapped, or finished: nothing more happens before the decision.
    pub fn settled(&self) -> bool {
        matches!(self, State::Swapped | State::Done { .. })
    }
}

/// The script's text: POSIX sh, run as root with `sh DIR/member.sh`. Every
/// value in it is a quoted assignment; the commands are the user's and run
/// with `sh -c`.
pub fn member_script(p: &ScriptPlan<'_>) -> String {
    let q = shell_quote;
    format!(
        r#"# sprayvault etcd restore: stop, swap and start of one etcd member, detached
# from the ssh connection that started it. Its state is in "$dir/state".
set -u
umask 077
dir={dir}
snapshot={snapshot}
data={data}
new={new}
aside={aside}
stop_cmd={stop}
start_cmd={start}
step={step}
wait={wait}
exec </dev/null >>"$dir/{LOG}" 2>&1
echo $$ > "$dir/{PID}"
state() {{ printf '%s\n' "$*" | tr -d '\r' > "$dir/{STATE}.tmp" && mv -f "$dir/{STATE}.tmp" "$dir/{STATE}"; }}
bounded() {{ if command -v timeout >/dev/null 2>&1; then timeout -k 10 "$step" "$@"; else "$@"; fi; }}
said() {{ printf '%s' "$1" | tail -n 3 | tr '\n' ' '; }}
moved_old=0
moved_new=0
# Undoes what swap did; fails if something could not be moved back.
rollback() {{
  if [ "$moved_new" = 1 ]; then
    mv "$data/member" "$new/member" || return 1
    moved_new=0
  fi
  if [ "$moved_old" = 1 ]; then
    mv "$aside/member" "$data/member" || return 1
    rmdir "$aside" || true
    moved_old=0
  fi
  return 0
}}
swap() {{
  if [ -e "$data/member" ]; then
    mkdir -m 0700 "$aside" || return 1
    if ! mv "$data/member" "$aside/member"; then rmdir "$aside"; return 1; fi
    moved_old=1
  fi
  mv "$new/member" "$data/member" || return 1
  moved_new=1
  chown -R --reference="$data" "$data/member" || return 1
}}
# Starts etcd (whatever happened before) and ends: $1 is where the data is,
# $2 why it is not the restored one.
finish() {{
  rm -f "$snapshot"
  if [ "$1" = restored ]; then rmdir "$new" 2>/dev/null || true; else rm -rf "$new"; fi
  out=$(bounded sh -c "$start_cmd" 2>&1)
  rc=$?
  printf '%s\n' "$out"
  if [ "$rc" = 0 ]; then state done "$1" started "$2"; exit 0; fi
  state done "$1" not-started "$(failed start "$rc" "$out")${{2:+; $2}}"
  exit 0
}}
# Why a bounded command failed: $1 stop or start, $2 its status, $3 its output.
failed() {{
  case $2 in
    124|137) printf 'the %s command did not finish within %s s' "$1" "$step" ;;
    *) printf 'the %s command failed: %s' "$1" "$(said "$3")" ;;
  esac
}}
state running
end=$(( $(date +%s) + wait ))
out=$(bounded sh -c "$stop_cmd" 2>&1)
rc=$?
printf '%s\n' "$out"
if [ "$rc" != 0 ]; then finish old "$(failed stop "$rc" "$out")"; fi
db="$data/member/snap/db"
if [ -e "$db" ] && command -v flock >/dev/null 2>&1; then
  i=0
  until flock -n -x "$db" true; do
    i=$((i+1))
    if [ "$i" -ge {LOCK_WAIT} ]; then finish old "$db is still locked {LOCK_WAIT} s after the stop command: etcd is still running"; fi
    sleep 1
  done
fi
state stopped
if ! swap; then
  if rollback; then finish old "moving the restored data into place failed"; fi
  finish unknown "moving the restored data into place failed and so did moving it back: check $data/member, $aside and $new"
fi
state swapped
while :; do
  if d=$(readlink "$dir/{DECISION}" 2>/dev/null); then break; fi
  if [ "$(date +%s)" -ge "$end" ]; then
    ln -s timeout "$dir/{DECISION}" 2>/dev/null || true
    d=$(readlink "$dir/{DECISION}" 2>/dev/null) || d=timeout
    break
  fi
  sleep 1
done
if [ "$d" = go ]; then finish restored ""; fi
case $d in
  timeout) why="no word from sprayvault within $wait s of its start" ;;
  *) why="another member failed, so every member went back to its old data" ;;
esac
if rollback; then finish old "$why"; fi
finish unknown "$why, and moving the data back failed: check $data/member, $aside and $new"
"#,
        dir = q(p.dir),
        snapshot = q(p.snapshot),
        data = q(p.data_dir),
        new = q(p.restore_dir),
        aside = q(p.aside),
        stop = q(p.stop),
        start = q(p.start),
        step = p.step,
        wait = p.wait,
    )
}

/// The command line that starts the script detached from the connection:
/// a transient systemd unit where systemd runs (so logind's
/// KillUserProcesses cannot end it with the ssh session), else a new
/// session with `setsid`. `unit` makes the unit name unique.
pub fn launch_command(dir: &str, unit: &str) -> String {
    let script = shell_quote(&format!("{dir}/{SCRIPT}"));
    format!(
        "cd / && if [ -d /run/systemd/system ] && command -v systemd-run >/dev/null 2>&1; then \
         systemd-run --quiet --no-block --collect --unit={unit} sh {script}; \
         else setsid sh {script} </dev/null >/dev/null 2>&1 & fi",
        unit = shell_quote(unit),
    )
}

/// Makes the decision unless the script made it already; prints the one
/// that holds.
pub fn decide_command(dir: &str, decision: &str) -> String {
    let d = shell_quote(&format!("{dir}/{DECISION}"));
    format!(
        "ln -s {} {d} 2>/dev/null; readlink {d}",
        shell_quote(decision)
    )
}

/// Prints the state line (nothing before the script writes one).
pub fn state_command(dir: &str) -> String {
    format!(
        "cat {} 2>/dev/null || true",
        shell_quote(&format!("{dir}/{STATE}"))
    )
}

/// Removes what earlier runs left on a member, unless a script of theirs
/// still runs there (then it fails, naming it). Only root's directories
/// count: another account's look-alike (naming a live pid) is neither
/// obeyed nor removed, so it cannot block restores. Upload directories (a
/// snapshot cut off mid-upload, a finished script's files) and restored
/// copies beside the data that were never moved in.
pub fn sweep_command(data_dir: &str) -> String {
    format!(
        "for d in /var/tmp/sprayvault-etcd-restore-*; do [ -d \"$d\" ] && [ ! -L \"$d\" ] || continue; \
         [ \"$(stat -c %u \"$d\")\" = 0 ] || continue; \
         if [ -f \"$d/{PID}\" ] && [ ! -e \"$d/{STATE}\" -o -z \"$(grep '^done ' \"$d/{STATE}\" 2>/dev/null)\" ] \
         && kill -0 \"$(cat \"$d/{PID}\")\" 2>/dev/null; then \
         echo \"the restore script of an earlier etcd restore still runs ($d, pid $(cat \"$d/{PID}\")); wait until it ends\" >&2; exit 1; fi; done; \
         find /var/tmp -maxdepth 1 -type d -user 0 -name 'sprayvault-etcd-restore-*' -exec rm -rf {{}} +; \
         rm -rf {data}/.sprayvault-restore-*",
        data = shell_quote(data_dir),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan() -> ScriptPlan<'static> {
        ScriptPlan {
            dir: "/var/tmp/sprayvault-etcd-restore-00ff",
            snapshot: "/var/tmp/sprayvault-etcd-restore-00ff/snapshot.db",
            data_dir: "/var/lib/etcd it's",
            restore_dir: "/var/lib/etcd it's/.sprayvault-restore-20261202T000000Z",
            aside: "/var/lib/etcd it's/.sprayvault-before-20261202T000000Z",
            stop: "systemctl stop etcd; echo \"$(uname -n)\" 'x'",
            start: "systemctl start etcd",
            step: 300,
            wait: 330,
        }
    }

    fn parses(text: &str) {
        let out = std::process::Command::new("sh")
            .arg("-n")
            .arg("-c")
            .arg(text)
            .output()
            .expect("sh runs");
        assert!(
            out.status.success(),
            "{}\n{text}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    #[test]
    fn the_script_and_its_commands_parse_in_a_real_shell() {
        parses(&member_script(&plan()));
        parses(&launch_command(plan().dir, "sprayvault-etcd-restore-00ff"));
        parses(&decide_command(plan().dir, "go"));
        parses(&state_command(plan().dir));
        parses(&sweep_command(plan().data_dir));
    }

    #[test]
    fn every_path_and_command_is_one_quoted_assignment() {
        let s = member_script(&plan());
        assert!(s.contains("\ndata='/var/lib/etcd it'\\''s'\n"), "{s}");
        assert!(
            s.contains("\nstop_cmd='systemctl stop etcd; echo \"$(uname -n)\" '\\''x'\\'''\n"),
            "{s}"
        );
        // Each value appears once, in its assignment; the rest uses variables.
        assert_eq!(s.matches("systemctl stop etcd").count(), 1, "{s}");
        assert_eq!(s.matches(".sprayvault-restore-").count(), 1, "{s}");
        assert_eq!(s.matches(".sprayvault-before-").count(), 1, "{s}");
        // The stop and start commands run bounded, through sh -c.
        assert!(s.contains("bounded sh -c \"$stop_cmd\""), "{s}");
        assert!(s.contains("bounded sh -c \"$start_cmd\""), "{s}");
    }

    #[test]
    fn the_script_starts_the_restored_data_only_on_go_and_always_starts_etcd() {
        let s = member_script(&plan());
        assert_eq!(s.matches("finish restored").count(), 1, "{s}");
        assert!(
            s.contains("if [ \"$d\" = go ]; then finish restored"),
            "{s}"
        );
        // Every way out of the script goes through finish, which starts etcd.
        let exits: Vec<&str> = s.lines().filter(|l| l.contains("exit")).collect();
        assert_eq!(
            exits,
            [
                "  if [ \"$rc\" = 0 ]; then state done \"$1\" started \"$2\"; exit 0; fi",
                "  exit 0"
            ],
            "{s}"
        );
        assert!(s
            .trim_end()
            .ends_with("check $data/member, $aside and $new\""));
    }

    fn run_script(dir: &std::path::Path, stop: &str, decision: Option<&str>, wait: u64) -> String {
        let d = dir.to_str().unwrap();
        let data = dir.join("data");
        let new = data.join(".sprayvault-restore-T");
        std::fs::create_dir_all(data.join("member/snap")).unwrap();
        std::fs::write(data.join("member/snap/db"), "old").unwrap();
        std::fs::create_dir_all(new.join("member/snap")).unwrap();
        std::fs::write(new.join("member/snap/db"), "new").unwrap();
        std::fs::write(dir.join("snapshot.db"), "secret").unwrap();
        if let Some(v) = decision {
            std::os::unix::fs::symlink(v, dir.join(DECISION)).unwrap();
        }
        let (data_s, new_s) = (data.to_str().unwrap(), new.to_str().unwrap());
        let aside = format!("{data_s}/.sprayvault-before-T");
        let snap = format!("{d}/snapshot.db");
        let started = format!("echo started > {}", shell_quote(&format!("{d}/etcd")));
        let text = member_script(&ScriptPlan {
            dir: d,
            snapshot: &snap,
            data_dir: data_s,
            restore_dir: new_s,
            aside: &aside,
            stop,
            start: &started,
            step: 2,
            wait,
        });
        std::fs::write(dir.join(SCRIPT), text).unwrap();
        let out = std::process::Command::new("sh")
            .arg(dir.join(SCRIPT))
            .output()
            .expect("sh runs");
        assert!(out.status.success());
        assert!(!dir.join("snapshot.db").exists(), "the snapshot is removed");
        assert_eq!(
            std::fs::read_to_string(dir.join("etcd")).unwrap(),
            "started\n",
            "etcd is started whatever happened"
        );
        assert!(!new.exists(), "the restored copy is moved in or removed");
        assert!(!std::path::Path::new(&aside).exists() || decision == Some("go"));
        let state = std::fs::read_to_string(dir.join(STATE)).unwrap();
        let db = std::fs::read_to_string(data.join("member/snap/db")).unwrap();
        format!("{} | {db}", state.trim())
    }

    #[test]
    fn the_script_swaps_on_go_and_goes_back_on_abort_timeout_or_a_failed_stop() {
        let t = tempfile::tempdir().unwrap();
        let go = run_script(&t.path().join("go"), "true", Some("go"), 5);
        assert_eq!(go, "done restored started | new");
        let t2 = t.path().join("abort");
        let abort = run_script(&t2, "true", Some("abort"), 5);
        assert_eq!(
            abort,
            "done old started another member failed, so every member went back to its old data | old"
        );
        let timeout = run_script(&t.path().join("timeout"), "true", None, 1);
        assert_eq!(
            timeout,
            "done old started no word from sprayvault within 1 s of its start | old"
        );
        let failed = run_script(
            &t.path().join("stop"),
            "echo no systemd >&2; false",
            None,
            1,
        );
        assert_eq!(
            failed,
            "done old started the stop command failed: no systemd | old"
        );
    }

    #[test]
    fn states_parse_from_what_the_script_writes() {
        assert_eq!(State::parse("running\n"), Some(State::Running));
        assert_eq!(State::parse("swapped"), Some(State::Swapped));
        assert_eq!(
            State::parse("done restored started \n"),
            Some(State::Done {
                data: Data::Restored,
                started: true,
                why: None
            })
        );
        assert_eq!(
            State::parse("done old not-started the start command failed: x; y"),
            Some(State::Done {
                data: Data::Old,
                started: false,
                why: Some("the start command failed: x; y".into())
            })
        );
        assert_eq!(State::parse(""), None);
        assert_eq!(State::parse("done sideways started"), None);
        assert!(!State::Stopped.settled());
    }

    #[test]
    fn the_decision_is_made_once() {
        let t = tempfile::tempdir().unwrap();
        let d = t.path().to_str().unwrap();
        let run = |c: String| {
            let o = std::process::Command::new("sh")
                .arg("-c")
                .arg(c)
                .output()
                .unwrap();
            String::from_utf8_lossy(&o.stdout).trim().to_string()
        };
        assert_eq!(run(decide_command(d, "timeout")), "timeout");
        assert_eq!(run(decide_command(d, "go")), "timeout");
    }
}
