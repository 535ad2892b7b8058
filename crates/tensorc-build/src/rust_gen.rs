//! The generated Rust: for every `def` of the compiled `.nxir` files, an
//! `extern "C"` declaration of its `tensorc_<name>` entry point (docs/c-abi.md)
//! and safe wrappers that check every slice's length against the shape the
//! artifact was compiled for, so safe code can never make the artifact read or
//! write out of bounds. The text is deterministic (functions in file and
//! source order) and has no inner attributes, so it can be `include!`d inside
//! a `mod`.

use std::collections::BTreeSet;
use std::fmt::Write as _;
use tensorc_ir::{DType, Function, TensorType};

/// One compiled file: the name shown in generated docs and its functions.
pub(crate) struct Unit<'a> {
    pub source_name: &'a str,
    pub functions: &'a [Function],
}

/// The Rust element type of a dtype. Rust has no stable half-precision type,
/// so f16/bf16 elements are their raw bit patterns as `u16`, exactly as the C
/// ABI passes them (`half::f16::to_bits` gives them).
pub(crate) fn rust_type(d: DType) -> &'static str {
    match d {
        DType::S8 => "i8",
        DType::S16 => "i16",
        DType::S32 => "i32",
        DType::S64 => "i64",
        DType::U8 => "u8",
        DType::U16 | DType::F16 | DType::BF16 => "u16",
        DType::U32 => "u32",
        DType::U64 => "u64",
        DType::F32 => "f32",
        DType::F64 => "f64",
    }
}

/// Strict and reserved keywords of Rust 2015–2024 (what may not be an
/// identifier without `r#`).
const RUST_KEYWORDS: &[&str] = &[
    "as", "async", "await", "break", "const", "continue", "crate", "dyn", "else", "enum",
    "extern", "false", "fn", "for", "gen", "if", "impl", "in", "let", "loop", "match", "mod",
    "move", "mut", "pub", "ref", "return", "self", "Self", "static", "struct", "super", "trait",
    "true", "try", "type", "unsafe", "use", "where", "while", "abstract", "become", "box", "do",
    "final", "macro", "override", "priv", "typeof", "unsized", "virtual", "yield", "_",
];

/// Names a parameter binding cannot take: the prelude's enum variants (a
/// pattern, not a binding, in Rust).
const VARIANTS: &[&str] = &["Ok", "Err", "Some", "None"];

/// Keywords that cannot even be raw identifiers.
const NOT_RAW: &[&str] = &["crate", "self", "Self", "super", "_"];

/// The Rust name of a `def`: the `.nxir` name, as a raw identifier when it is
/// a keyword (`def match` → `r#match`), with `_` appended where even that is
/// impossible (`def self` → `self_`). `.nxir` names are already `[A-Za-z_]\w*`.
fn function_ident(name: &str) -> String {
    if NOT_RAW.contains(&name) {
        format!("{name}_")
    } else if RUST_KEYWORDS.contains(&name) {
        format!("r#{name}")
    } else {
        name.to_owned()
    }
}

/// The Rust parameter names: the `.nxir` names, except keywords and names that
/// could clash with the generated `outN` results or the `argN` replacements,
/// which become `argN` (N = parameter position; the docs name the original).
pub(crate) fn param_names(params: &[(String, TensorType)]) -> Vec<String> {
    params
        .iter()
        .enumerate()
        .map(|(i, (n, _))| {
            let clash = RUST_KEYWORDS.contains(&n.as_str())
                || VARIANTS.contains(&n.as_str())
                || n.starts_with("out")
                || n.starts_with("arg")
                || n.starts_with("__");
            if clash { format!("arg{i}") } else { n.clone() }
        })
        .collect()
}

/// `f32[4][3] (12 elements, row-major)`.
fn shape_doc(t: &TensorType) -> String {
    if t.rank() == 0 {
        format!("`{t}` (a scalar: a slice of 1 element)")
    } else {
        format!("`{t}` ({} elements, row-major)", t.num_elements())
    }
}

/// The ndarray dimension type of a rank (`Ix0`..`Ix6`, `IxDyn` beyond).
fn nd_dim(rank: usize) -> String {
    if rank <= 6 {
        format!("ndarray::Ix{rank}")
    } else {
        "ndarray::IxDyn".into()
    }
}

/// The shape as an ndarray shape value of `nd_dim(rank)`.
fn nd_shape(t: &TensorType) -> String {
    let dims: Vec<String> = t.shape.iter().map(|d| format!("{d}usize")).collect();
    if t.rank() == 0 {
        "ndarray::Ix0()".into()
    } else if t.rank() <= 6 {
        format!("[{}]", dims.join(", "))
    } else {
        format!("ndarray::IxDyn(&[{}])", dims.join(", "))
    }
}

/// Generated names that two `def`s would both define (`f_into` of `def f`
/// and a `def f_into`), reported before any Rust is written.
pub(crate) fn name_clashes(units: &[Unit<'_>], ndarray: bool) -> Vec<String> {
    let mut seen = BTreeSet::new();
    let mut clashes = Vec::new();
    for f in units.iter().flat_map(|u| u.functions) {
        let base = function_ident(&f.name);
        let bare = base.trim_start_matches("r#").to_owned();
        let mut names = vec![base.clone(), format!("{bare}_into")];
        if ndarray {
            names.push(format!("{bare}_nd"));
        }
        for n in names {
            if !seen.insert(n.clone()) {
                clashes.push(n);
            }
        }
    }
    clashes
}

/// The whole generated file.
pub(crate) fn generate(units: &[Unit<'_>], ndarray: bool) -> String {
    let sources: Vec<&str> = units.iter().map(|u| u.source_name).collect();
    let mut s = String::new();
    let _ = writeln!(
        s,
        "// Generated by tensorc-build from {}. Do not edit.\n\
         // Include it inside a module of its own:\n\
         //     mod model {{ include!(concat!(env!(\"OUT_DIR\"), \"/model.rs\")); }}\n\
         // Every function checks each slice's length against the shape the model was\n\
         // compiled for, then calls the ahead-of-time artifact (docs/c-abi.md).\n",
        sources.join(", ")
    );
    s.push_str(PRELUDE);
    if ndarray {
        s.push_str(ND_PRELUDE);
    }
    s.push_str("\nmod __ffi {\n    unsafe extern \"C\" {\n");
    for f in units.iter().flat_map(|u| u.functions) {
        let names = param_names(&f.params);
        let mut args: Vec<String> = f
            .params
            .iter()
            .zip(&names)
            .map(|((_, t), n)| format!("{n}: *const {}", rust_type(t.dtype)))
            .collect();
        for (i, t) in f.flat_results().iter().enumerate() {
            args.push(format!("out{i}: *mut {}", rust_type(t.dtype)));
        }
        let _ = writeln!(
            s,
            "        pub fn tensorc_{}({}) -> i32;",
            f.name,
            args.join(", ")
        );
    }
    s.push_str("    }\n}\n");
    for u in units {
        for f in u.functions {
            function(&mut s, u.source_name, f, ndarray);
        }
    }
    s
}

/// Items every generated file has: the error type and the length check.
const PRELUDE: &str = r#"
/// Why a generated function refused or failed a call.
#[allow(dead_code)]
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Error {
    /// A slice does not hold exactly the elements of its documented shape.
    Length { argument: &'static str, expected: usize, actual: usize },
    /// An ndarray view does not have the documented shape.
    Shape { argument: &'static str, expected: &'static [usize], actual: Vec<usize> },
    /// The entry point returned a non-zero status (reserved by the C ABI;
    /// current artifacts always return 0).
    Status(i32),
}

impl ::core::fmt::Display for Error {
    fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
        match self {
            Error::Length { argument, expected, actual } => write!(
                f,
                "`{argument}` has {actual} elements, the model needs exactly {expected}"
            ),
            Error::Shape { argument, expected, actual } => write!(
                f,
                "`{argument}` has shape {actual:?}, the model needs {expected:?}"
            ),
            Error::Status(s) => write!(f, "the model returned status {s}"),
        }
    }
}

impl ::std::error::Error for Error {}

#[allow(dead_code)]
fn __check_len(argument: &'static str, actual: usize, expected: usize) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::Length { argument, expected, actual })
    }
}
"#;

/// Helpers of the ndarray functions.
const ND_PRELUDE: &str = r#"
#[allow(dead_code)]
fn __check_shape(
    argument: &'static str,
    actual: &[usize],
    expected: &'static [usize],
) -> Result<(), Error> {
    if actual == expected {
        Ok(())
    } else {
        Err(Error::Shape { argument, expected, actual: actual.to_vec() })
    }
}

/// The elements of a view in row-major order: borrowed when the view already
/// is contiguous and row-major, copied otherwise.
#[allow(dead_code)]
fn __row_major<'a, T: Copy, D: ndarray::Dimension>(
    view: &'a ndarray::CowArray<'a, T, D>,
) -> ::std::borrow::Cow<'a, [T]> {
    match view.as_slice() {
        Some(s) => ::std::borrow::Cow::Borrowed(s),
        None => ::std::borrow::Cow::Owned(view.iter().copied().collect()),
    }
}
"#;

/// The wrappers of one `def`: `<f>_into` (caller buffers), `<f>` (returns
/// `Vec`s) and, with ndarray, `<f>_nd` (views in, arrays out).
fn function(s: &mut String, source_name: &str, f: &Function, ndarray: bool) {
    let ident = function_ident(&f.name);
    let bare = ident.trim_start_matches("r#");
    let names = param_names(&f.params);
    let results = f.flat_results();
    let signature = format!(
        "{}({}) -> {}",
        f.name,
        f.params
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect::<Vec<_>>()
            .join(", "),
        f.result
    );
    let mut param_docs = String::new();
    for ((orig, t), n) in f.params.iter().zip(&names) {
        let note = if orig != n {
            format!(" (`.nxir` parameter `{orig}`)")
        } else {
            String::new()
        };
        let _ = writeln!(param_docs, "/// - `{n}`: {}{note}", shape_doc(t));
    }
    let half = f
        .params
        .iter()
        .map(|(_, t)| t)
        .chain(results.iter())
        .any(|t| matches!(t.dtype, DType::F16 | DType::BF16));
    let half_doc = if half {
        "///\n/// f16/bf16 elements are their raw 16-bit patterns (`u16`).\n"
    } else {
        ""
    };
    let inputs: Vec<String> = f
        .params
        .iter()
        .zip(&names)
        .map(|((_, t), n)| format!("{n}: &[{}]", rust_type(t.dtype)))
        .collect();
    let outs: Vec<String> = results
        .iter()
        .enumerate()
        .map(|(i, t)| format!("out{i}: &mut [{}]", rust_type(t.dtype)))
        .collect();

    // `<f>_into`: the checked call.
    let _ = writeln!(
        s,
        "\n/// Runs `{signature}` (from `{source_name}`), writing the results into\n\
         /// the `out` slices.\n///\n{param_docs}"
    );
    s.pop(); // the blank line writeln added after param_docs' last line
    for (i, t) in results.iter().enumerate() {
        let _ = writeln!(s, "/// - `out{i}`: result {i}, {}", shape_doc(t));
    }
    s.push_str(half_doc);
    let _ = writeln!(
        s,
        "#[allow(dead_code, non_snake_case, clippy::too_many_arguments)]\n\
         pub fn {bare}_into({}) -> Result<(), Error> {{",
        inputs
            .iter()
            .chain(outs.iter())
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    );
    for ((_, t), n) in f.params.iter().zip(&names) {
        let _ = writeln!(
            s,
            "    __check_len(\"{n}\", {n}.len(), {})?;",
            t.num_elements()
        );
    }
    for (i, t) in results.iter().enumerate() {
        let _ = writeln!(
            s,
            "    __check_len(\"out{i}\", out{i}.len(), {})?;",
            t.num_elements()
        );
    }
    let call_args: Vec<String> = names
        .iter()
        .map(|n| format!("{n}.as_ptr()"))
        .chain((0..results.len()).map(|i| format!("out{i}.as_mut_ptr()")))
        .collect();
    let _ = writeln!(
        s,
        "    // SAFETY: every slice holds exactly the elements of the shape the entry\n\
         \x20   // point was compiled for (checked above); it reads only the inputs, writes\n\
         \x20   // only the outputs, keeps no pointer, and the borrows guarantee that no\n\
         \x20   // output overlaps another buffer (docs/c-abi.md).\n\
         \x20   let status = unsafe {{ __ffi::tensorc_{}({}) }};\n\
         \x20   if status != 0 {{\n        return Err(Error::Status(status));\n    }}\n\
         \x20   Ok(())\n}}",
        f.name,
        call_args.join(", ")
    );

    // `<f>`: returns fresh Vecs.
    let vec_ty = |t: &TensorType| format!("Vec<{}>", rust_type(t.dtype));
    let ret_ty = match results.len() {
        1 => vec_ty(&results[0]),
        _ => format!(
            "({})",
            results.iter().map(vec_ty).collect::<Vec<_>>().join(", ")
        ),
    };
    let ret_val = |prefix: &str| match results.len() {
        1 => format!("{prefix}0"),
        _ => format!(
            "({})",
            (0..results.len())
                .map(|i| format!("{prefix}{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let _ = writeln!(
        s,
        "\n/// Runs `{signature}` (from `{source_name}`) and returns its results\n\
         /// as new row-major `Vec`s (see [`{bare}_into`] for the shapes).{}\n\
         #[allow(dead_code, non_snake_case, clippy::too_many_arguments, clippy::type_complexity)]\n\
         pub fn {ident}({}) -> Result<{ret_ty}, Error> {{",
        if half {
            "\n///\n/// f16/bf16 elements are their raw 16-bit patterns (`u16`)."
        } else {
            ""
        },
        inputs.join(", ")
    );
    for (i, t) in results.iter().enumerate() {
        let _ = writeln!(
            s,
            "    let mut out{i} = vec![<{}>::default(); {}];",
            rust_type(t.dtype),
            t.num_elements()
        );
    }
    let into_args: Vec<String> = names
        .iter()
        .cloned()
        .chain((0..results.len()).map(|i| format!("&mut out{i}")))
        .collect();
    let _ = writeln!(
        s,
        "    {bare}_into({})?;\n    Ok({})\n}}",
        into_args.join(", "),
        ret_val("out")
    );

    if ndarray {
        nd_function(s, f, &signature, source_name, half, &names);
    }
}

/// `<f>_nd`: shape-checked ndarray views in, owned arrays out.
fn nd_function(
    s: &mut String,
    f: &Function,
    signature: &str,
    source_name: &str,
    half: bool,
    names: &[String],
) {
    let bare = function_ident(&f.name).trim_start_matches("r#").to_owned();
    let results = f.flat_results();
    let arr_ty = |t: &TensorType| format!("ndarray::Array<{}, {}>", rust_type(t.dtype), nd_dim(t.rank()));
    let ret_ty = match results.len() {
        1 => arr_ty(&results[0]),
        _ => format!(
            "({})",
            results.iter().map(arr_ty).collect::<Vec<_>>().join(", ")
        ),
    };
    let inputs: Vec<String> = f
        .params
        .iter()
        .zip(names)
        .map(|((_, t), n)| {
            format!(
                "{n}: ndarray::ArrayView<'_, {}, {}>",
                rust_type(t.dtype),
                nd_dim(t.rank())
            )
        })
        .collect();
    let _ = writeln!(
        s,
        "\n/// Runs `{signature}` (from `{source_name}`) on ndarray views of any\n\
         /// layout (non-row-major views are copied first) and returns owned arrays.{}\n\
         #[allow(dead_code, non_snake_case, clippy::too_many_arguments, clippy::type_complexity)]\n\
         pub fn {bare}_nd({}) -> Result<{ret_ty}, Error> {{",
        if half {
            "\n///\n/// f16/bf16 elements are their raw 16-bit patterns (`u16`)."
        } else {
            ""
        },
        inputs.join(", ")
    );
    for ((_, t), n) in f.params.iter().zip(names) {
        let dims: Vec<String> = t.shape.iter().map(|d| d.to_string()).collect();
        let _ = writeln!(
            s,
            "    __check_shape(\"{n}\", {n}.shape(), &[{}])?;\n\
             \x20   let {n} = {n}.as_standard_layout();\n\
             \x20   let {n} = __row_major(&{n});",
            dims.join(", ")
        );
    }
    let call: Vec<String> = names.iter().map(|n| format!("&{n}")).collect();
    let got = if results.len() == 1 {
        "out0".to_string()
    } else {
        format!(
            "({})",
            (0..results.len())
                .map(|i| format!("out{i}"))
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let _ = writeln!(s, "    let {got} = {}({})?;", function_ident(&f.name), call.join(", "));
    let mut arrays = Vec::new();
    for (i, t) in results.iter().enumerate() {
        // `out{i}` has exactly the shape's elements (`{f}` made it), so this
        // cannot fail; the error keeps it panic-free all the same.
        let _ = writeln!(
            s,
            "    let n{i} = out{i}.len();\n\
             \x20   let a{i} = ndarray::Array::from_shape_vec({}, out{i}).map_err(|_| Error::Length {{\n\
             \x20       argument: \"out{i}\",\n\
             \x20       expected: {},\n\
             \x20       actual: n{i},\n\
             \x20   }})?;",
            nd_shape(t),
            t.num_elements()
        );
        arrays.push(format!("a{i}"));
    }
    let ret = if arrays.len() == 1 {
        arrays[0].clone()
    } else {
        format!("({})", arrays.join(", "))
    };
    let _ = writeln!(s, "    Ok({ret})\n}}");
}

#[cfg(test)]
mod tests {
    use super::*;
    use tensorc_ir::SourceFile;

    fn module(src: &str) -> tensorc_ir::Module {
        tensorc_ir::check::compile(&SourceFile::new("t.nxir", src)).expect("valid program")
    }

    #[test]
    fn dtypes_map_to_rust_types_with_halves_as_bits() {
        assert_eq!(rust_type(DType::F32), "f32");
        assert_eq!(rust_type(DType::S8), "i8");
        assert_eq!(rust_type(DType::U64), "u64");
        assert_eq!(rust_type(DType::F16), "u16");
        assert_eq!(rust_type(DType::BF16), "u16");
    }

    #[test]
    fn keywords_and_reserved_prefixes_are_renamed() {
        let t = TensorType::new(DType::F32, vec![2]);
        let p = vec![
            ("x".to_string(), t.clone()),
            ("type".to_string(), t.clone()),
            ("out0".to_string(), t.clone()),
            ("argument".to_string(), t.clone()),
            ("Some".to_string(), t.clone()),
            ("check_len".to_string(), t),
        ];
        assert_eq!(param_names(&p), vec!["x", "arg1", "arg2", "arg3", "arg4", "check_len"]);
        assert_eq!(function_ident("match"), "r#match");
        assert_eq!(function_ident("self"), "self_");
        assert_eq!(function_ident("mlp"), "mlp");
    }

    #[test]
    fn wrappers_check_every_length_and_declare_the_entry_point() {
        let m = module(
            "def f(x: f32[2][3], k: s32) -> {f32[2][3], u8[3]} {\n  y = multiply x, k\n  z = reduce_max x, axes: [0]\n  c = greater z, 0.0\n  return {y, c}\n}\n",
        );
        let units = [Unit { source_name: "t.nxir", functions: &m.functions }];
        let rs = generate(&units, false);
        assert!(rs.contains("pub fn tensorc_f(x: *const f32, k: *const i32, out0: *mut f32, out1: *mut u8) -> i32;"), "{rs}");
        assert!(rs.contains("__check_len(\"x\", x.len(), 6)?;"), "{rs}");
        assert!(rs.contains("__check_len(\"k\", k.len(), 1)?;"), "{rs}");
        assert!(rs.contains("__check_len(\"out1\", out1.len(), 3)?;"), "{rs}");
        assert!(rs.contains("pub fn f(x: &[f32], k: &[i32]) -> Result<(Vec<f32>, Vec<u8>), Error>"), "{rs}");
        assert!(!rs.contains("fn f_nd"), "no ndarray functions unless asked");
        let nd = generate(&units, true);
        assert!(nd.contains("pub fn f_nd(x: ndarray::ArrayView<'_, f32, ndarray::Ix2>, k: ndarray::ArrayView<'_, i32, ndarray::Ix0>) -> Result<(ndarray::Array<f32, ndarray::Ix2>, ndarray::Array<u8, ndarray::Ix1>), Error>"), "{nd}");
    }

    #[test]
    fn clashing_generated_names_are_found() {
        let m = module(
            "def f(x: f32[2]) -> f32[2] {\n  return x\n}\ndef f_into(x: f32[2]) -> f32[2] {\n  return x\n}\n",
        );
        let units = [Unit { source_name: "t.nxir", functions: &m.functions }];
        assert_eq!(name_clashes(&units, false), vec!["f_into".to_string()]);
        let m2 = module("def g(x: f32[2]) -> f32[2] {\n  return x\n}\n");
        let units = [
            Unit { source_name: "a.nxir", functions: &m2.functions },
            Unit { source_name: "b.nxir", functions: &m2.functions },
        ];
        assert_eq!(name_clashes(&units, false), vec!["g".to_string(), "g_into".to_string()]);
    }
}
