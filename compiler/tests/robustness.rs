//! Nothing a user or a disk supplies can make the parser, compiler or loader panic.

use leadscore_runtime::bytecode::{Program, HEADER_LEN};
use proptest::prelude::*;
use sha2::{Digest, Sha256};

const WORDS: &[&str] = &[
    "when",
    "add",
    "subtract",
    "to",
    "from",
    "each",
    "max",
    "expires",
    "after",
    "where",
    "count",
    ">=",
    "within",
    "inactive",
    "for",
    "if",
    "{",
    "}",
    "grade",
    "tag",
    "otherwise",
    "score",
    "range",
    "set",
    "ruleset",
    "in",
    "not",
    "and",
    "or",
    "contains",
    "any",
    "word",
    "is",
    "=",
    "!=",
    "<",
    ">",
    "<=",
    "(",
    ")",
    "[",
    "]",
    ",",
    "..",
    "+",
    "-",
    "fit",
    "A",
    "C",
    "country",
    "email.opened",
    "tier1",
    "\"US\"",
    "\"预算\"",
    "30",
    "7d",
    "0",
    "5",
    "domain",
    "len",
    "sentences",
    "lead.country",
    "#",
    "\n",
    "true",
];

fn soup() -> impl Strategy<Value = String> {
    prop::collection::vec(prop::sample::select(WORDS), 0..60).prop_map(|w| w.join(" "))
}

fn example_programs() -> Vec<Vec<u8>> {
    static CACHE: std::sync::OnceLock<Vec<Vec<u8>>> = std::sync::OnceLock::new();
    CACHE.get_or_init(compile_examples).clone()
}

fn compile_examples() -> Vec<Vec<u8>> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../examples");
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.extension().is_some_and(|x| x == "rules") {
            let src = std::fs::read_to_string(&p).unwrap();
            out.push(
                leadscore_compiler::compile(&src, "t")
                    .unwrap()
                    .program
                    .to_bytes(),
            );
        }
    }
    out
}

/// Re-seals a mutated body with a correct header, so decoding and verification run.
fn reseal(bytes: &mut [u8]) {
    let body_len = (bytes.len() - HEADER_LEN) as u32;
    bytes[8..12].copy_from_slice(&body_len.to_le_bytes());
    let digest = Sha256::digest(&bytes[HEADER_LEN..]);
    bytes[12..44].copy_from_slice(&digest);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn compiling_token_soup_never_panics(s in soup()) {
        if let Ok(c) = leadscore_compiler::compile(&s, "t") {
            // Whatever compiles also survives its own encoding and verification.
            let back = Program::from_bytes(&c.program.to_bytes()).unwrap();
            prop_assert_eq!(back, c.program);
        }
    }

    #[test]
    fn loading_random_bytes_never_panics(bytes in prop::collection::vec(any::<u8>(), 0..512)) {
        let _ = Program::from_bytes(&bytes);
        let mut sealed = b"LSBC\x01\x00\x00\x00".to_vec();
        sealed.extend_from_slice(&[0; 36]);
        sealed.extend_from_slice(&bytes);
        reseal(&mut sealed);
        let _ = Program::from_bytes(&sealed);
    }

    #[test]
    fn loading_mutated_programs_never_panics(
        which in 0usize..5,
        flips in prop::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
        cut in any::<prop::sample::Index>(),
    ) {
        let programs = example_programs();
        let mut bytes = programs[which % programs.len()].clone();
        for (at, value) in &flips {
            let i = HEADER_LEN + at.index(bytes.len() - HEADER_LEN);
            bytes[i] ^= value | 1;
        }
        // Without resealing the checksum catches it.
        prop_assert!(Program::from_bytes(&bytes).is_err());
        reseal(&mut bytes);
        let _ = Program::from_bytes(&bytes);
        let keep = HEADER_LEN + cut.index(bytes.len() - HEADER_LEN);
        let mut short = bytes[..keep].to_vec();
        reseal(&mut short);
        let _ = Program::from_bytes(&short);
    }
}

#[test]
fn every_example_round_trips_through_bytes() {
    for bytes in example_programs() {
        let p = Program::from_bytes(&bytes).unwrap();
        assert_eq!(p.to_bytes(), bytes);
    }
}

#[test]
fn wrong_version_and_magic_are_named() {
    let mut bytes = example_programs().remove(0);
    bytes[4] = 9;
    let e = Program::from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("version 9 is not supported"), "{e}");
    // A program compiled before rules could notify (version 2), before `apart` and
    // `total` (version 4), or before the sales desk (version 6): compile again.
    for old in [2, 4, 5, 6] {
        bytes[4] = old;
        let e = Program::from_bytes(&bytes).unwrap_err().to_string();
        assert!(
            e.contains(&format!(
                "version {old} is not supported (this build reads version 7); compile the rules again"
            )),
            "{e}"
        );
    }
    bytes[0] = b'X';
    let e = Program::from_bytes(&bytes).unwrap_err().to_string();
    assert!(e.contains("not a leadscore program"), "{e}");
}

#[test]
fn pathological_rules_get_diagnostics_not_crashes() {
    let deep = format!(
        "when {}x = 1{} add 1\ngrade C otherwise\n",
        "(".repeat(100_000),
        ")".repeat(100_000)
    );
    let e = leadscore_compiler::compile(&deep, "t").unwrap_err();
    assert_eq!(e[0].code, "E0005");
    let nots = format!(
        "when {} x = 1 add 1\ngrade C otherwise\n",
        "not ".repeat(10_000)
    );
    assert_eq!(
        leadscore_compiler::compile(&nots, "t").unwrap_err()[0].code,
        "E0005"
    );
    let big = format!(
        "when x contains \"{}\" add 1\ngrade C otherwise\n",
        "a".repeat(1 << 20)
    );
    assert!(leadscore_compiler::compile(&big, "t").is_ok());
}

mod pathological {
    include!("common/pathological.rs");
}

/// What `check` accepted and a reload then crashed on: bounded with diagnostics, at the
/// limits and just past them, on a thread with a small stack (the compiler takes its own).
#[test]
fn nesting_and_expression_size_are_bounded_with_diagnostics() {
    let small = std::thread::Builder::new().stack_size(256 << 10);
    small
        .spawn(|| {
            let code = |src: &str| {
                leadscore_compiler::compile(src, "t")
                    .err()
                    .map(|d| d[0].code)
            };
            assert_eq!(code(&pathological::nested_ifs(1000)), Some("E0005"));
            assert_eq!(code(&pathological::nested_ifs(3000)), Some("E0005"));
            assert_eq!(code(&pathological::nested_ifs(64)), None);
            assert_eq!(code(&pathological::long_sum(5000)), Some("E0007"));
            assert_eq!(code(&pathological::long_sum(257)), Some("E0007"));
            assert_eq!(code(&pathological::long_sum(256)), None);
            let ors = |n: usize| {
                let terms: Vec<String> = (0..n).map(|i| format!("x = {i}")).collect();
                format!("when {} add 1\ngrade C otherwise\n", terms.join(" or "))
            };
            assert_eq!(code(&ors(257)), Some("E0007"));
            assert_eq!(code(&ors(256)), None);
            let e = leadscore_compiler::compile(&pathological::long_sum(5000), "t").unwrap_err();
            let shown = leadscore_dsl::diagnostic::render(
                &e,
                "t.rules",
                &pathological::long_sum(5000),
                leadscore_dsl::diagnostic::Style::Short,
                false,
            );
            assert!(shown.starts_with("t.rules:5001:"), "{shown}");
        })
        .unwrap()
        .join()
        .unwrap();
}

/// 8,000 sets, half never used: compiled, with a warning each.
#[test]
fn thousands_of_sets_compile_with_a_warning_for_each_unused_one() {
    let c = leadscore_compiler::compile(&pathological::unused_sets(8000), "t").expect("compiles");
    assert_eq!(
        c.warnings.iter().filter(|w| w.code == "W0002").count(),
        4000
    );
}
