//! `leadscore fmt` (leadscore_dsl::format): on every rules file in the repository and on
//! randomly re-spaced copies of them, formatting is idempotent, gives one layout whatever
//! the spacing was, and never changes what the rules compile to (the program's
//! `meaning_hash`: everything but line numbers and the source hash). Longer runs:
//! `LEADSCORE_FMT_CASES=2000`.

use leadscore_dsl::format::format;
use proptest::prelude::*;
use std::path::{Path, PathBuf};

fn rules_files() -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let mut out = Vec::new();
    for dir in [
        "examples",
        "examples/peers",
        "examples/rules-repo/rules",
        "compiler/tests/data/ok",
    ] {
        for e in std::fs::read_dir(root.join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "rules") {
                out.push(p);
            }
        }
    }
    out.sort();
    assert!(out.len() >= 15, "{out:?}");
    out
}

fn meaning(src: &str) -> [u8; 32] {
    leadscore_compiler::compile(src, "x")
        .unwrap_or_else(|d| panic!("{:?}\n{src}", d.first()))
        .program
        .meaning_hash()
}

fn check(name: &str, src: &str) {
    let once = format(src).unwrap_or_else(|d| panic!("{name}: {:?}", d.first()));
    let twice = format(&once).unwrap();
    assert_eq!(
        twice, once,
        "{name}: formatting the formatted text changed it"
    );
    assert_eq!(
        meaning(&once),
        meaning(src),
        "{name}: formatting changed the program"
    );
    for (n, line) in once.lines().enumerate() {
        assert_eq!(line, line.trim_end(), "{name}:{}: trailing space", n + 1);
    }
}

#[test]
fn every_rules_file_formats_idempotently_and_keeps_its_meaning() {
    for path in rules_files() {
        let src = std::fs::read_to_string(&path).unwrap();
        check(&path.display().to_string(), &src);
    }
}

/// The repository's rules files are kept formatted (`leadscore fmt --check` in CI too).
#[test]
fn the_repositorys_rules_are_formatted() {
    for path in rules_files() {
        let src = std::fs::read_to_string(&path).unwrap();
        assert_eq!(
            format(&src).unwrap(),
            src,
            "{}: run `leadscore fmt` on it",
            path.display()
        );
    }
}

#[test]
fn comments_stay_where_they_were() {
    let src = "# head\n\nset a = [\"x\"]  # the set\n\nif a in a {  # guard\n  # inside\n  when b in a add 1  # rule\n}\n# before the grades\ngrade A when score >= 1\ngrade B otherwise\n";
    let out = format(src).unwrap();
    for c in [
        "# head",
        "# the set",
        "# guard",
        "# inside",
        "# rule",
        "# before the grades",
    ] {
        assert!(out.contains(c), "{c} lost:\n{out}");
    }
    let line_of = |t: &str| out.lines().position(|l| l.contains(t)).unwrap();
    assert_eq!(line_of("# the set"), line_of("set a"), "{out}");
    assert_eq!(line_of("# rule"), line_of("when b"), "{out}");
    assert_eq!(line_of("# inside") + 1, line_of("when b"), "{out}");
    assert_eq!(
        line_of("# before the grades") + 1,
        line_of("grade A"),
        "{out}"
    );
}

#[test]
fn long_sets_wrap_at_the_width_with_their_items_aligned() {
    let items: Vec<String> = (0..40).map(|i| format!("\"item{i}\"")).collect();
    let src = format!(
        "set long = [{}]\nwhen x in long add 1\ngrade A otherwise\n",
        items.join(",")
    );
    let out = format(&src).unwrap();
    let set: Vec<&str> = out.lines().take_while(|l| !l.starts_with("when")).collect();
    assert!(set.len() > 1, "{out}");
    for l in &set {
        assert!(
            leadscore_dsl::format::width(l) <= leadscore_dsl::format::WIDTH,
            "{l}"
        );
    }
    for l in &set[1..] {
        assert!(
            l.starts_with("            \"item"),
            "items under the first: {l}"
        );
    }
    check("long set", &src);
}

#[test]
fn syntax_errors_are_reported_not_formatted() {
    let d = format("wehn x = 1 add 2\ngrade A otherwise\n").unwrap_err();
    assert_eq!(d[0].code, "E0001");
}

/// Re-spaces `src`: each run of spaces outside text and comments becomes 1–4 spaces or a
/// tab, chosen by `seed`; trailing spaces are added to some lines.
fn respace(src: &str, seed: &[u8]) -> String {
    let mut out = String::new();
    let mut n = 0usize;
    let mut pick = || {
        n += 1;
        seed[n % seed.len()]
    };
    for line in src.lines() {
        let (mut in_str, mut in_comment, mut prev_space) = (false, false, false);
        for c in line.chars() {
            if in_comment {
                out.push(c);
                continue;
            }
            match c {
                '"' => {
                    in_str = !in_str;
                    out.push(c);
                }
                '#' if !in_str => {
                    in_comment = true;
                    out.push(c);
                }
                ' ' if !in_str => {
                    if !prev_space {
                        match pick() % 5 {
                            0 => out.push('\t'),
                            k => out.push_str(&" ".repeat(k as usize)),
                        }
                    }
                    prev_space = true;
                    continue;
                }
                _ => out.push(c),
            }
            prev_space = false;
        }
        if pick() % 3 == 0 {
            out.push_str("   ");
        }
        out.push('\n');
    }
    out
}

fn cases() -> u32 {
    std::env::var("LEADSCORE_FMT_CASES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(48)
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(cases()))]

    /// However a file is spaced, it formats to the same text, which keeps its meaning.
    #[test]
    fn one_layout_whatever_the_spacing(file in 0usize..64, seed in proptest::collection::vec(any::<u8>(), 1..64)) {
        let files = rules_files();
        let path = &files[file % files.len()];
        let src = std::fs::read_to_string(path).unwrap();
        let jittered = respace(&src, &seed);
        prop_assert_eq!(meaning(&jittered), meaning(&src));
        let a = format(&jittered).unwrap();
        prop_assert_eq!(&a, &format(&src).unwrap(), "{}", path.display());
        check(&path.display().to_string(), &jittered);
    }
}
