//! Files and directories sprayvault creates over SFTP are private from the
//! request that creates them: against OpenSSH's real sftp-server, started
//! here with a umask of 022 (as an SFTP server without `-u 077` runs), a
//! created file is 0600 and a directory 0700 before anything else is sent.

mod common;
use common::*;
use openssh_sftp_client::{Sftp, SftpOptions};
use std::os::unix::fs::PermissionsExt;
use std::process::Stdio;

const SFTP_SERVER: &str = "/usr/lib/openssh/sftp-server";

fn mode(path: &std::path::Path) -> u32 {
    std::fs::symlink_metadata(path)
        .unwrap()
        .permissions()
        .mode()
        & 0o7777
}

#[test]
fn created_files_and_directories_carry_their_private_mode_in_the_request() {
    need(SFTP_SERVER);
    let dir = tempfile::tempdir().unwrap();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        let mut server = tokio::process::Command::new("sh")
            .args(["-c", &format!("umask 022; exec {SFTP_SERVER}")])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .unwrap();
        let (stdin, stdout) = (server.stdin.take().unwrap(), server.stdout.take().unwrap());
        let sftp = Sftp::new(stdin, stdout, SftpOptions::default())
            .await
            .unwrap();

        let with = dir.path().join("with-mode");
        let f = sftp
            .options()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&with)
            .await
            .unwrap();
        assert_eq!(mode(&with), 0o600, "private from its creation");
        f.close().await.unwrap();

        // What the library sent before it was patched: no mode, so the
        // server's umask alone decides.
        let without = dir.path().join("without-mode");
        let f = sftp
            .options()
            .write(true)
            .create_new(true)
            .open(&without)
            .await
            .unwrap();
        assert_eq!(mode(&without), 0o644);
        f.close().await.unwrap();

        let sub = dir.path().join("stage");
        sftp.fs()
            .dir_builder()
            .permissions(openssh_sftp_client::metadata::Permissions::from(0o700u16))
            .create(&sub)
            .await
            .unwrap();
        assert_eq!(mode(&sub), 0o700);
        sftp.close().await.unwrap();
        server.wait().await.unwrap();
    });
}
