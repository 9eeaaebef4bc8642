//! The lock's verification path in one small program, to measure what each
//! key type adds to the code: read a metadata file, parse it as root, and
//! check it against its own root keys.
//!
//! ```text
//! for f in "" ecdsa rsa ecdsa,rsa; do
//!   cargo build --release -p nightlatch-proto --example verify_size \
//!     --no-default-features --features "$f"
//!   size -A target/release/examples/verify_size | grep '^.text'
//! done
//! ```
//!
//! It uses only `nightlatch_proto` (no dev-dependency), so the difference
//! between feature sets is the code the key types bring.

use nightlatch_proto::tuf::{Envelope, Role, Root};

fn main() {
    let Some(path) = std::env::args().nth(1) else {
        eprintln!("usage: verify_size ROOT.json");
        std::process::exit(2);
    };
    let bytes = match std::fs::read(&path) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("{path}: {e}");
            std::process::exit(1);
        }
    };
    let checked = Envelope::parse(&bytes, Role::Root).and_then(|env| {
        let root = Root::parse(&env)?;
        env.verify(&root.keys, &root.root, Role::Root)?;
        Ok(root)
    });
    match checked {
        Ok(root) => println!("root version {} verified", root.header.version),
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    }
}
