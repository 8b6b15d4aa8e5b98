//! Writing a large blob as an ordinary git loose object whose zlib stream
//! uses stored (uncompressed) blocks. etcd snapshot chunks are ciphertext,
//! which deflate cannot shrink: libgit2's default level spends most of a
//! snapshot's backup time compressing them for nothing. Git and libgit2
//! read the object like any other; `git gc` repacks it as usual.
//!
//! Durability is the run's: the object is written under a temporary name
//! and renamed into place, not synced on its own; the run makes every object
//! it wrote durable in one pass ([`sync_objects`]) before any ref can point
//! at them.

use git2::{ObjectType, Oid};
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// Makes the loose objects `oids` under `objects` durable in one pass:
/// each file, then each fan-out directory they are in, then `objects`
/// itself (for new fan-out directories). One pass for a run's objects,
/// after they are all written, instead of three syncs each as they are
/// written. An object that is not loose (packed meanwhile) is skipped.
pub fn sync_objects(objects: &Path, oids: &[Oid]) -> io::Result<()> {
    let mut dirs = std::collections::BTreeSet::new();
    for oid in oids {
        let hex = oid.to_string();
        let fan = objects.join(&hex[..2]);
        match File::open(fan.join(&hex[2..])) {
            Ok(f) => f.sync_all()?,
            Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
            Err(e) => return Err(e),
        }
        dirs.insert(fan);
    }
    if dirs.is_empty() {
        return Ok(());
    }
    for d in &dirs {
        File::open(d)?.sync_all()?;
    }
    File::open(objects)?.sync_all()
}

/// Writes `data` as a blob under `objects` (a repository's objects
/// directory) unless it is there already; returns its id.
pub fn write_blob(objects: &Path, data: &[u8]) -> io::Result<Oid> {
    let oid = Oid::hash_object(ObjectType::Blob, data).map_err(io::Error::other)?;
    write_loose(objects, oid, data.len() as u64, &mut &data[..])?;
    Ok(oid)
}

/// Writes the content of the file `spool` as a blob under `objects`,
/// streaming it (hashed, then copied), unless the blob is there already;
/// returns its id. The spool file is left for the caller to remove.
pub fn write_blob_file(objects: &Path, spool: &Path) -> io::Result<Oid> {
    let oid = Oid::hash_file(ObjectType::Blob, spool).map_err(io::Error::other)?;
    let mut file = File::open(spool)?;
    let size = file.metadata()?.len();
    write_loose(
        objects,
        oid,
        size,
        &mut io::BufReader::with_capacity(1 << 20, &mut file),
    )?;
    Ok(oid)
}

/// Writes blob `oid` of `size` bytes, read from `data`, as a loose object.
fn write_loose(objects: &Path, oid: Oid, size: u64, data: &mut dyn io::Read) -> io::Result<()> {
    let hex = oid.to_string();
    let fan = objects.join(&hex[..2]);
    let path = fan.join(&hex[2..]);
    if path.exists() {
        return Ok(());
    }
    match fs::create_dir(&fan) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => return Err(e),
    };
    let tmp = fan.join(format!("tmp_obj_{:016x}", rand::random::<u64>()));
    let written = (|| {
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o444)
            .open(&tmp)?;
        let mut z = flate2::write::ZlibEncoder::new(
            io::BufWriter::with_capacity(1 << 20, file),
            flate2::Compression::none(),
        );
        z.write_all(format!("blob {size}\0").as_bytes())?;
        let copied = io::copy(data, &mut z)?;
        if copied != size {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                format!("object {hex}: {copied} bytes where {size} were hashed"),
            ));
        }
        let file = z.finish()?.into_inner().map_err(|e| e.into_error())?;
        drop(file);
        fs::rename(&tmp, &path)
    })();
    if let Err(e) = written {
        let _ = fs::remove_file(&tmp);
        return Err(e);
    }
    Ok(())
}

/// Opens the loose object `oid` under `objects` as a stream of its blob
/// content, without reading it whole (libgit2 reads objects into memory).
/// `Ok(None)`: not a loose object (packed, or absent).
pub fn open_blob(objects: &Path, oid: Oid) -> io::Result<Option<(u64, impl io::Read)>> {
    use io::{BufRead, Read};
    let hex = oid.to_string();
    let file = match File::open(objects.join(&hex[..2]).join(&hex[2..])) {
        Ok(f) => f,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e),
    };
    let mut z = io::BufReader::with_capacity(
        64 << 10,
        flate2::read::ZlibDecoder::new(io::BufReader::with_capacity(64 << 10, file)),
    );
    let mut header = Vec::new();
    z.read_until(0, &mut header)?;
    let bad = || {
        io::Error::new(
            io::ErrorKind::InvalidData,
            format!("object {hex}: bad header"),
        )
    };
    let text = header
        .strip_suffix(&[0])
        .and_then(|h| std::str::from_utf8(h).ok())
        .ok_or_else(bad)?;
    let size: u64 = text
        .strip_prefix("blob ")
        .and_then(|n| n.parse().ok())
        .ok_or_else(bad)?;
    Ok(Some((size, z.take(size))))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Runs the system git (an outside program: `--features lab`).
    #[cfg(feature = "lab")]
    #[test]
    fn git_reads_the_object_back() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let data: Vec<u8> = (0..300_000u32).map(|i| (i * 7 % 251) as u8).collect();
        let oid = write_blob(&dir.path().join("objects"), &data).unwrap();
        assert_eq!(oid, Oid::hash_object(ObjectType::Blob, &data).unwrap());
        assert_eq!(repo.find_blob(oid).unwrap().content(), &data[..]);
        // Written again: the same object, nothing left behind.
        assert_eq!(write_blob(&dir.path().join("objects"), &data).unwrap(), oid);
        let fan = dir.path().join("objects").join(&oid.to_string()[..2]);
        assert_eq!(fs::read_dir(fan).unwrap().count(), 1);
        // And the system git agrees.
        let out = std::process::Command::new("git")
            .arg("--git-dir")
            .arg(dir.path())
            .args(["cat-file", "-p", &oid.to_string()])
            .output()
            .unwrap();
        assert!(out.status.success());
        assert_eq!(out.stdout, data);
    }

    #[test]
    fn a_spooled_file_becomes_the_blob_of_its_content() {
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path().join("r")).unwrap();
        let data: Vec<u8> = (0..3_000_000u32).map(|i| (i * 31 % 253) as u8).collect();
        let spool = dir.path().join("spool");
        fs::write(&spool, &data).unwrap();
        let objects = dir.path().join("r").join("objects");
        let oid = write_blob_file(&objects, &spool).unwrap();
        assert_eq!(oid, Oid::hash_object(ObjectType::Blob, &data).unwrap());
        assert_eq!(repo.find_blob(oid).unwrap().content(), &data[..]);
        assert!(spool.exists(), "the spool is the caller's to remove");
    }

    #[test]
    fn streams_a_loose_blob_back() {
        use std::io::Read;
        let dir = tempfile::tempdir().unwrap();
        let repo = git2::Repository::init_bare(dir.path()).unwrap();
        let data: Vec<u8> = (0..200_000u32).map(|i| (i * 13 % 241) as u8).collect();
        let oid = repo.blob(&data).unwrap();
        let (size, mut r) = open_blob(&dir.path().join("objects"), oid)
            .unwrap()
            .unwrap();
        let mut back = Vec::new();
        r.read_to_end(&mut back).unwrap();
        assert_eq!((size, back), (data.len() as u64, data));
        let absent = Oid::hash_object(ObjectType::Blob, b"x").unwrap();
        assert!(open_blob(&dir.path().join("objects"), absent)
            .unwrap()
            .is_none());
    }
}
