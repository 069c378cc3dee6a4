//! The MNIST downloader against a small HTTP server on 127.0.0.1 started here (no network):
//! the first mirror serves a corrupted file and 404s, the second the real files from
//! `../shared/data/mnist`. Checks the fallback, the checksums, the `.part` handling, that
//! verified files are not fetched again, and the no-network error.
#![cfg(feature = "download")]

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use ferrograd::data::{download_from, Mnist, MnistKind};

const NAMES: [&str; 4] = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
];

/// Serves `files` (URL path -> body) over HTTP/1.1 on a free loopback port, one connection at
/// a time, 404 for anything else. Returns the base URL and a request counter.
fn serve(files: HashMap<String, Vec<u8>>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let count = Arc::new(AtomicUsize::new(0));
    let counter = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            // Skip the headers.
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 2).unwrap_or(false) {
                line.clear();
            }
            counter.fetch_add(1, Ordering::SeqCst);
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, body) = match files.get(&path) {
                Some(b) => ("200 OK", b.as_slice()),
                None => ("404 Not Found", &b"not here"[..]),
            };
            let head = format!(
                "HTTP/1.1 {status}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                body.len()
            );
            stream.write_all(head.as_bytes()).ok();
            stream.write_all(body).ok();
        }
    });
    (base, count)
}

fn shared() -> Option<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data/mnist");
    if dir.join(NAMES[0]).exists() {
        Some(dir)
    } else {
        eprintln!("SKIPPED: {} not found", dir.display());
        None
    }
}

fn temp_dir(tag: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("ferrograd-dl-{tag}-{}", std::process::id()));
    std::fs::remove_dir_all(&dir).ok();
    dir
}

#[test]
fn downloads_verifies_and_falls_back() {
    let Some(src) = shared() else { return };
    let mut files = HashMap::new();
    for name in NAMES {
        let bytes = std::fs::read(src.join(name)).unwrap();
        if name.starts_with("t10k-labels") {
            // Mirror one has a damaged copy of this file and nothing else.
            let mut bad = bytes.clone();
            bad[100] ^= 1;
            files.insert(format!("/one/{name}"), bad);
        }
        files.insert(format!("/two/{name}"), bytes);
    }
    let (base, requests) = serve(files);
    let (one, two) = (format!("{base}/one/"), format!("{base}/two/"));
    let dir = temp_dir("ok");

    let got = download_from(MnistKind::Mnist, &dir, &[&one, &two]).unwrap();
    assert_eq!(got, dir);
    // Each file was asked of mirror one (404 or bad sum), then fetched from mirror two.
    assert_eq!(requests.load(Ordering::SeqCst), 8);
    for name in NAMES {
        assert_eq!(
            std::fs::read(dir.join(name)).unwrap(),
            std::fs::read(src.join(name)).unwrap(),
            "{name}"
        );
    }
    let leftovers: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".part"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
    let mnist = Mnist::load(&dir).unwrap();
    assert_eq!((mnist.train.len(), mnist.test.len()), (60000, 10000));

    // Verified files are not fetched again; a damaged one is.
    download_from(MnistKind::Mnist, &dir, &[&one, &two]).unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 8);
    let labels = dir.join(NAMES[3]);
    let mut bytes = std::fs::read(&labels).unwrap();
    bytes.truncate(1000);
    std::fs::write(&labels, bytes).unwrap();
    download_from(MnistKind::Mnist, &dir, &[&two]).unwrap();
    assert_eq!(requests.load(Ordering::SeqCst), 9);
    assert_eq!(
        std::fs::read(&labels).unwrap(),
        std::fs::read(src.join(NAMES[3])).unwrap()
    );

    // Only a bad copy anywhere: an error naming the sums, and nothing left behind.
    std::fs::remove_file(&labels).unwrap();
    let e = download_from(MnistKind::Mnist, &dir, &[&one])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("t10k-labels-idx1-ubyte.gz") && e.contains("md5") && e.contains("expected"),
        "{e}"
    );
    assert!(!labels.exists() && !dir.join(format!("{}.part", NAMES[3])).exists());
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn no_network_says_where_to_put_the_files() {
    let dir = temp_dir("offline");
    // Port 1 on loopback: connection refused at once, as with no network.
    let e = download_from(MnistKind::FashionMnist, &dir, &["http://127.0.0.1:1/"])
        .unwrap_err()
        .to_string();
    for name in NAMES {
        assert!(e.contains(name), "{e}");
    }
    assert!(
        e.contains("Without network access") && e.contains(&*dir.to_string_lossy()),
        "{e}"
    );
    assert!(e.contains("fashion-mnist.s3"), "{e}");
    std::fs::remove_dir_all(&dir).ok();
}
