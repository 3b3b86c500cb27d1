// Rules files that stress the compiler's bounds (included by tests that need them).

/// `n` nested `if` blocks around one rule.
pub fn nested_ifs(n: usize) -> String {
    format!(
        "{}when email.opened add 1\n{}grade A when score >= 1\ngrade B otherwise\n",
        "if country = \"US\" {\n".repeat(n),
        "}\n".repeat(n)
    )
}

/// `n` scores summed in one grade condition.
pub fn long_sum(n: usize) -> String {
    let scores: String = (0..n).map(|i| format!("score s{i}\n")).collect();
    let sum: Vec<String> = (0..n).map(|i| format!("s{i}")).collect();
    format!("{scores}grade A when {} >= 1\ngrade B otherwise\n", sum.join(" + "))
}

/// `n` sets, half of them used by a rule each, half never used (a warning each).
pub fn unused_sets(n: usize) -> String {
    let mut s: String = (0..n).map(|i| format!("set s{i} = [\"a{i}\"]\n")).collect();
    for i in (0..n).step_by(2) {
        s.push_str(&format!("when country in s{i} add 1\n"));
    }
    s.push_str("grade A when score >= 1\ngrade B otherwise\n");
    s
}
