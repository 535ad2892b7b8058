//! The checker never panics on user input: every prefix of some valid
//! programs, every program with one line deleted, and every program with its
//! numbers replaced by extreme values must give a module or diagnostics.

use tensorc_ir::check::compile;
use tensorc_ir::printer::print_module;
use tensorc_ir::span::SourceFile;

const PROGRAMS: &[&str] = &[
    "def f(x: f32[2][3], y: s8[3]) -> f32[2][3] {\n  a = add x, y\n  b = sum a, axes: [1], keep_axes: true\n  c = dot x, [1], [], x, [1], []\n  d = pad x, 0.0, [{1, -1, 2}, {0, 0, 0}]\n  e = slice x, [1, 2], [1, 1], [1, 1]\n  return a\n}\n",
    "def g(x: u8[4]) {\n  t = tensor [[1, 2], [3, 4]]  u8[2][2]\n  r = reshape t  u8[4]\n  s = concatenate [x, r], axis: 0\n  k = stack [x, x], axis: -1\n  m = argmax k, axis: 1, keep_axis: true\n  return {s, m}\n}\ndef h(x: u8[4]) {\n  p = call g, x\n  q = elem p, 1\n  return q\n}\n",
    "def f(x: f32[3]) {\n  b = broadcast x, {2, 3}, [1]\n  t = transpose b, [1, 0]\n  i = iota 1  s32[2][3]\n  e = eye  f32[3][3]\n  c = constant 7  s16[2]\n  q = squeeze b\n  v = reverse t, [0]\n  return v\n}\n",
];

const NUMBERS: &[&str] = &["0", "-1", "-9223372036854775809", "99999999999999999999999", "1.0e308", "nan", "4294967296"];

fn run(src: &str) {
    let file = SourceFile::new("r.nxir", src);
    if let Ok(m) = compile(&file) {
        // Anything that checks also prints.
        let _ = print_module(&m);
    }
}

#[test]
fn prefixes_do_not_panic() {
    for p in PROGRAMS {
        for (i, _) in p.char_indices() {
            run(&p[..i]);
        }
    }
}

#[test]
fn deleted_lines_do_not_panic() {
    for p in PROGRAMS {
        let lines: Vec<&str> = p.lines().collect();
        for skip in 0..lines.len() {
            let src: Vec<&str> = lines.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, l)| *l).collect();
            run(&src.join("\n"));
        }
    }
}

#[test]
fn extreme_numbers_do_not_panic() {
    for p in PROGRAMS {
        // Replace each maximal run of digits, one at a time, with each extreme value.
        let bytes = p.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            if bytes[i].is_ascii_digit() {
                let start = i;
                while i < bytes.len() && bytes[i].is_ascii_digit() {
                    i += 1;
                }
                for n in NUMBERS {
                    run(&format!("{}{}{}", &p[..start], n, &p[i..]));
                }
            } else {
                i += 1;
            }
        }
    }
}
