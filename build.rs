// Build-time outputs of the `leadscore` binary: the commit it is built from (for
// `--version`) and its manual page, written by clap_mangen from the same command-line
// definition the binary parses (src/cli.rs), into OUT_DIR (`leadscore man` prints it;
// tests/cli.rs checks docs/leadscore.1 is that page).

include!("src/cli.rs");

fn main() {
    println!("cargo:rerun-if-changed=src/cli.rs");
    for git in [".git/HEAD", ".git/refs/heads", ".git/packed-refs"] {
        if std::path::Path::new(git).exists() {
            println!("cargo:rerun-if-changed={git}");
        }
    }
    let commit = std::process::Command::new("git")
        .args(["rev-parse", "--short=12", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .filter(|c| !c.is_empty())
        .unwrap_or_else(|| "unknown commit".into());
    println!("cargo:rustc-env=LEADSCORE_COMMIT={commit}");

    let out = std::path::PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    let version = env!("CARGO_PKG_VERSION");
    // The page names the version, not the commit, so it is the same in every checkout.
    let cmd = <Cli as clap::CommandFactory>::command().version(version);
    let mut page = Vec::new();
    clap_mangen::Man::new(cmd)
        .render(&mut page)
        .expect("the manual page renders");
    std::fs::write(out.join("leadscore.1"), page).expect("OUT_DIR is writable");
}
