//! Reading and writing NumPy `.npy` files (spec §6), the exchange format of
//! `tensorc run --input` / `--output-dir` and of the benchmark harness.
//!
//! Written by hand rather than with a crate because the format is tiny (a magic
//! string, a Python-dict header, raw data) and we need exact control over the
//! failure modes: every malformed file must become an `NpyError` with a clear
//! message, never a panic, and a header that claims a huge shape must not make
//! us allocate before we have checked that the data is actually there.
//!
//! Accepted: format versions 1.0, 2.0 and 3.0; dtype codes `i1 i2 i4 i8 u1 u2
//! u4 u8 f2 f4 f8` and `b1` (read as `u8`, Nx's boolean); little-endian (`<`),
//! byte-order-free (`|`) and big-endian (`>`, byte-swapped on read);
//! C order and Fortran order (transposed into C order on read).
//! Written: version 1.0 (2.0 when the header does not fit), little-endian, C order.

use crate::tensor::{Tensor, TensorError};
use crate::types::{DType, TensorType};
use std::borrow::Cow;

const MAGIC: &[u8] = b"\x93NUMPY";
/// Headers are padded so that the data starts on this boundary, as NumPy does.
const HEADER_ALIGN: usize = 64;
/// A generous bound on header size; NumPy itself refuses headers above 10 kB by default.
const MAX_HEADER_LEN: usize = 1 << 20;

/// Why a byte string is not a `.npy` file we can read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NpyError {
    #[error("not a .npy file (missing the \\x93NUMPY magic string)")]
    BadMagic,
    #[error("unsupported .npy format version {major}.{minor} (supported: 1.0, 2.0, 3.0)")]
    Version { major: u8, minor: u8 },
    #[error("truncated .npy file: {0}")]
    Truncated(String),
    #[error("malformed .npy header: {0}")]
    Header(String),
    #[error("unsupported .npy dtype '{0}' (supported: i1 i2 i4 i8 u1 u2 u4 u8 f2 f4 f8 b1)")]
    DType(String),
    #[error("the .npy shape {0:?} is too large")]
    TooLarge(Vec<usize>),
    #[error("the .npy data has {got} bytes, but shape {shape:?} of {dtype} needs {expected}")]
    DataLength {
        shape: Vec<usize>,
        dtype: DType,
        expected: usize,
        got: usize,
    },
}

/// Parses a whole `.npy` file.
pub fn read_npy(bytes: &[u8]) -> Result<Tensor, NpyError> {
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(NpyError::BadMagic);
    }
    let rest = &bytes[MAGIC.len()..];
    if rest.len() < 2 {
        return Err(NpyError::Truncated("the version bytes are missing".into()));
    }
    let (major, minor) = (rest[0], rest[1]);
    let rest = &rest[2..];
    let (header_len, rest) = match (major, minor) {
        (1, 0) => {
            if rest.len() < 2 {
                return Err(NpyError::Truncated("the header length is missing".into()));
            }
            (u16::from_le_bytes([rest[0], rest[1]]) as usize, &rest[2..])
        }
        (2, 0) | (3, 0) => {
            if rest.len() < 4 {
                return Err(NpyError::Truncated("the header length is missing".into()));
            }
            (
                u32::from_le_bytes([rest[0], rest[1], rest[2], rest[3]]) as usize,
                &rest[4..],
            )
        }
        _ => return Err(NpyError::Version { major, minor }),
    };
    if header_len > MAX_HEADER_LEN {
        return Err(NpyError::Header(format!(
            "header length {header_len} is implausibly large"
        )));
    }
    if rest.len() < header_len {
        return Err(NpyError::Truncated(format!(
            "the header should be {header_len} bytes, the file has only {} left",
            rest.len()
        )));
    }
    let (header_bytes, data) = rest.split_at(header_len);
    // Versions 1 and 2 use latin-1 headers, 3 uses UTF-8. Every header we can
    // accept is ASCII, so decoding as UTF-8 and rejecting the rest is enough.
    let header = std::str::from_utf8(header_bytes)
        .map_err(|_| NpyError::Header("the header is not ASCII/UTF-8 text".into()))?;
    let header = parse_header(header)?;

    let elements = header
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| NpyError::TooLarge(header.shape.clone()))?;
    let width = header.dtype.size_bytes();
    let expected = elements
        .checked_mul(width)
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| NpyError::TooLarge(header.shape.clone()))?;
    // Checked before allocating: a lying header cannot make us allocate more
    // than the file's own size.
    if data.len() != expected {
        return Err(NpyError::DataLength {
            shape: header.shape,
            dtype: header.dtype,
            expected,
            got: data.len(),
        });
    }

    let ty = TensorType::new(header.dtype, header.shape.clone());
    let mut tensor = Tensor::from_bytes(ty, data).map_err(|e| match e {
        TensorError::TooLarge(_) | TensorError::ByteLength { .. } => {
            NpyError::TooLarge(header.shape.clone())
        }
    })?;
    if header.big_endian && width > 1 {
        for elem in tensor.bytes_mut().chunks_exact_mut(width) {
            elem.reverse();
        }
    }
    if header.fortran_order && header.shape.len() > 1 {
        tensor = fortran_to_c(&tensor, &header.shape);
    }
    Ok(tensor)
}

/// Serializes a tensor as a `.npy` file (little-endian, C order).
///
/// `bf16` has no NumPy dtype code; it is written as `<f4`, which holds every
/// bf16 value exactly (the reader then sees an `f32` tensor).
pub fn write_npy(t: &Tensor) -> Vec<u8> {
    // Tensor bytes are already little-endian C order; only bf16 needs converting.
    let (descr, data): (&str, Cow<[u8]>) = match t.dtype() {
        DType::S8 => ("|i1", Cow::Borrowed(t.bytes())),
        DType::S16 => ("<i2", Cow::Borrowed(t.bytes())),
        DType::S32 => ("<i4", Cow::Borrowed(t.bytes())),
        DType::S64 => ("<i8", Cow::Borrowed(t.bytes())),
        DType::U8 => ("|u1", Cow::Borrowed(t.bytes())),
        DType::U16 => ("<u2", Cow::Borrowed(t.bytes())),
        DType::U32 => ("<u4", Cow::Borrowed(t.bytes())),
        DType::U64 => ("<u8", Cow::Borrowed(t.bytes())),
        DType::F16 => ("<f2", Cow::Borrowed(t.bytes())),
        DType::F32 => ("<f4", Cow::Borrowed(t.bytes())),
        DType::F64 => ("<f8", Cow::Borrowed(t.bytes())),
        DType::BF16 => {
            let mut out = Vec::with_capacity(t.len() * 4);
            for pair in t.bytes().chunks_exact(2) {
                let bits = (u16::from_le_bytes([pair[0], pair[1]]) as u32) << 16;
                out.extend_from_slice(&bits.to_le_bytes());
            }
            ("<f4", Cow::Owned(out))
        }
    };
    let shape = match t.shape() {
        [] => "()".to_string(),
        [d] => format!("({d},)"),
        dims => format!(
            "({})",
            dims.iter()
                .map(|d| d.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let dict = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");

    // Version 1.0 has a 2-byte header length; fall back to 2.0 only when the
    // padded header (dict, at most one alignment of spaces, newline) may not fit.
    let (version, len_bytes) = if dict.len() + HEADER_ALIGN < u16::MAX as usize {
        (1u8, 2usize)
    } else {
        (2u8, 4usize)
    };
    let unpadded = MAGIC.len() + 2 + len_bytes + dict.len() + 1;
    let padding = (HEADER_ALIGN - unpadded % HEADER_ALIGN) % HEADER_ALIGN;
    let header_len = dict.len() + padding + 1;

    let mut out = Vec::with_capacity(unpadded + padding + data.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[version, 0]);
    if version == 1 {
        out.extend_from_slice(&(header_len as u16).to_le_bytes());
    } else {
        out.extend_from_slice(&(header_len as u32).to_le_bytes());
    }
    out.extend_from_slice(dict.as_bytes());
    out.extend(std::iter::repeat_n(b' ', padding));
    out.push(b'\n');
    out.extend_from_slice(&data);
    out
}

struct Header {
    dtype: DType,
    big_endian: bool,
    fortran_order: bool,
    shape: Vec<usize>,
}

/// One value of the header dictionary (the subset of Python literals NumPy writes).
#[derive(Debug, PartialEq)]
enum PyValue {
    Str(String),
    Bool(bool),
    Tuple(Vec<usize>),
}

/// Parses `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }` (+ padding).
fn parse_header(text: &str) -> Result<Header, NpyError> {
    let mut p = Cursor {
        s: text.as_bytes(),
        i: 0,
    };
    p.skip_ws();
    p.expect(b'{')?;
    let (mut descr, mut fortran, mut shape) = (None, None, None);
    loop {
        p.skip_ws();
        if p.eat(b'}') {
            break;
        }
        let key = p.string()?;
        p.skip_ws();
        p.expect(b':')?;
        p.skip_ws();
        let value = p.value()?;
        match (key.as_str(), value) {
            ("descr", PyValue::Str(s)) => descr = Some(s),
            ("fortran_order", PyValue::Bool(b)) => fortran = Some(b),
            ("shape", PyValue::Tuple(t)) => shape = Some(t),
            ("descr" | "fortran_order" | "shape", v) => {
                return Err(NpyError::Header(format!(
                    "unexpected value {v:?} for key '{key}'"
                )));
            }
            (other, _) => return Err(NpyError::Header(format!("unknown key '{other}'"))),
        }
        p.skip_ws();
        if !p.eat(b',') {
            p.skip_ws();
            p.expect(b'}')?;
            break;
        }
    }
    p.skip_ws();
    if p.i != p.s.len() {
        return Err(NpyError::Header(
            "unexpected text after the dictionary".into(),
        ));
    }
    let descr = descr.ok_or_else(|| NpyError::Header("missing key 'descr'".into()))?;
    let fortran_order =
        fortran.ok_or_else(|| NpyError::Header("missing key 'fortran_order'".into()))?;
    let shape = shape.ok_or_else(|| NpyError::Header("missing key 'shape'".into()))?;
    let (dtype, big_endian) = parse_descr(&descr)?;
    Ok(Header {
        dtype,
        big_endian,
        fortran_order,
        shape,
    })
}

/// Maps a NumPy type string to a dtype and whether its bytes are big-endian.
fn parse_descr(descr: &str) -> Result<(DType, bool), NpyError> {
    let bad = || NpyError::DType(descr.to_string());
    let (order, code) = match descr.as_bytes().first() {
        Some(b'<' | b'|' | b'=') => (false, &descr[1..]),
        Some(b'>') => (true, &descr[1..]),
        _ => (false, descr),
    };
    let dtype = match code {
        "i1" => DType::S8,
        "i2" => DType::S16,
        "i4" => DType::S32,
        "i8" => DType::S64,
        "u1" | "b1" => DType::U8,
        "u2" => DType::U16,
        "u4" => DType::U32,
        "u8" => DType::U64,
        "f2" => DType::F16,
        "f4" => DType::F32,
        "f8" => DType::F64,
        _ => return Err(bad()),
    };
    // `=` means "native" and should never appear in a file; we treat it as
    // little-endian, which is what every machine tensorc supports is.
    Ok((dtype, order && dtype.size_bytes() > 1))
}

/// Reorders a column-major buffer into row-major order.
fn fortran_to_c(t: &Tensor, shape: &[usize]) -> Tensor {
    let w = t.dtype().size_bytes();
    let rank = shape.len();
    // Column-major strides (in elements) of the source.
    let mut fstride = vec![1usize; rank];
    for k in 1..rank {
        fstride[k] = fstride[k - 1] * shape[k - 1];
    }
    let mut out = t.clone();
    let src = t.bytes();
    let dst = out.bytes_mut();
    let mut idx = vec![0usize; rank];
    for c in 0..t.len() {
        let f: usize = idx.iter().zip(&fstride).map(|(i, s)| i * s).sum();
        dst[c * w..(c + 1) * w].copy_from_slice(&src[f * w..(f + 1) * w]);
        // Advance the row-major multi-index (last axis fastest).
        for k in (0..rank).rev() {
            idx[k] += 1;
            if idx[k] < shape[k] {
                break;
            }
            idx[k] = 0;
        }
    }
    out
}

/// A byte cursor over the header text.
struct Cursor<'a> {
    s: &'a [u8],
    i: usize,
}

impl Cursor<'_> {
    fn skip_ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.s.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn expect(&mut self, c: u8) -> Result<(), NpyError> {
        if self.eat(c) {
            Ok(())
        } else {
            let found = match self.s.get(self.i) {
                Some(&b) => format!("'{}'", b as char),
                None => "the end of the header".to_string(),
            };
            Err(NpyError::Header(format!(
                "expected '{}' at byte {}, found {found}",
                c as char, self.i
            )))
        }
    }

    fn string(&mut self) -> Result<String, NpyError> {
        let quote = match self.s.get(self.i) {
            Some(&q @ (b'\'' | b'"')) => q,
            _ => {
                return Err(NpyError::Header(format!(
                    "expected a quoted string at byte {}",
                    self.i
                )));
            }
        };
        self.i += 1;
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i] != quote {
            self.i += 1;
        }
        if self.i == self.s.len() {
            return Err(NpyError::Header("unterminated string".into()));
        }
        let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
        self.i += 1;
        Ok(text)
    }

    fn word(&mut self) -> &str {
        let start = self.i;
        while self.i < self.s.len() && self.s[self.i].is_ascii_alphanumeric() {
            self.i += 1;
        }
        std::str::from_utf8(&self.s[start..self.i]).unwrap_or("")
    }

    fn value(&mut self) -> Result<PyValue, NpyError> {
        match self.s.get(self.i) {
            Some(b'\'' | b'"') => Ok(PyValue::Str(self.string()?)),
            Some(b'(') => {
                self.i += 1;
                let mut dims = Vec::new();
                loop {
                    self.skip_ws();
                    if self.eat(b')') {
                        break;
                    }
                    let word = self.word().to_string();
                    // Python 2 era files may write longs as `3L`.
                    let digits = word.strip_suffix('L').unwrap_or(&word);
                    let dim = digits.parse::<usize>().map_err(|_| {
                        NpyError::Header(format!(
                            "shape entry '{word}' is not a non-negative integer"
                        ))
                    })?;
                    dims.push(dim);
                    self.skip_ws();
                    if !self.eat(b',') {
                        self.skip_ws();
                        self.expect(b')')?;
                        break;
                    }
                }
                Ok(PyValue::Tuple(dims))
            }
            Some(b'[') => Err(NpyError::Header(
                "structured dtypes (a list as 'descr') are not supported".into(),
            )),
            _ => match self.word() {
                "True" => Ok(PyValue::Bool(true)),
                "False" => Ok(PyValue::Bool(false)),
                "" => Err(NpyError::Header(format!(
                    "expected a value at byte {}",
                    self.i
                ))),
                w => Err(NpyError::Header(format!("unexpected value '{w}'"))),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tensor::Scalar;

    /// A v1.0 file built by hand from a header dict and raw data bytes.
    fn v1(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut header = dict.to_string();
        while !(10 + header.len() + 1).is_multiple_of(64) {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(data);
        out
    }

    fn dict(descr: &str, shape: &str) -> String {
        format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}")
    }

    #[test]
    fn reads_every_dtype() {
        let cases: Vec<(&str, Vec<u8>, DType, Vec<Scalar>)> = vec![
            (
                "|i1",
                vec![0xff, 0x05],
                DType::S8,
                vec![Scalar::I(-1), Scalar::I(5)],
            ),
            (
                "<i1",
                vec![0x80, 0x7f],
                DType::S8,
                vec![Scalar::I(-128), Scalar::I(127)],
            ),
            (
                "<i2",
                vec![0xfe, 0xff, 0x00, 0x01],
                DType::S16,
                vec![Scalar::I(-2), Scalar::I(256)],
            ),
            (
                "<i4",
                vec![1, 0, 0, 0, 0, 0, 0, 0x80],
                DType::S32,
                vec![Scalar::I(1), Scalar::I(i32::MIN as i64)],
            ),
            (
                "<i8",
                [(-3i64).to_le_bytes(), 7i64.to_le_bytes()].concat(),
                DType::S64,
                vec![Scalar::I(-3), Scalar::I(7)],
            ),
            (
                "|u1",
                vec![0xff, 0x00],
                DType::U8,
                vec![Scalar::U(255), Scalar::U(0)],
            ),
            (
                "<u1",
                vec![0x10, 0x20],
                DType::U8,
                vec![Scalar::U(16), Scalar::U(32)],
            ),
            (
                "|b1",
                vec![0x01, 0x00],
                DType::U8,
                vec![Scalar::U(1), Scalar::U(0)],
            ),
            (
                "<u2",
                vec![0xff, 0xff, 0x02, 0x00],
                DType::U16,
                vec![Scalar::U(65535), Scalar::U(2)],
            ),
            (
                "<u4",
                vec![0xff, 0xff, 0xff, 0xff, 3, 0, 0, 0],
                DType::U32,
                vec![Scalar::U(u32::MAX as u64), Scalar::U(3)],
            ),
            (
                "<u8",
                [u64::MAX.to_le_bytes(), 9u64.to_le_bytes()].concat(),
                DType::U64,
                vec![Scalar::U(u64::MAX), Scalar::U(9)],
            ),
            // 0x3c00 = 1.0 and 0xc000 = -2.0 in IEEE half precision.
            (
                "<f2",
                vec![0x00, 0x3c, 0x00, 0xc0],
                DType::F16,
                vec![Scalar::F(1.0), Scalar::F(-2.0)],
            ),
            // 0x3fc00000 = 1.5, 0xbf800000 = -1.0 in IEEE single precision.
            (
                "<f4",
                vec![0, 0, 0xc0, 0x3f, 0, 0, 0x80, 0xbf],
                DType::F32,
                vec![Scalar::F(1.5), Scalar::F(-1.0)],
            ),
            (
                "<f8",
                [0.25f64.to_le_bytes(), (-8.0f64).to_le_bytes()].concat(),
                DType::F64,
                vec![Scalar::F(0.25), Scalar::F(-8.0)],
            ),
        ];
        for (descr, data, dtype, values) in cases {
            let t = read_npy(&v1(&dict(descr, "(2,)"), &data))
                .unwrap_or_else(|e| panic!("{descr}: {e}"));
            assert_eq!(t.dtype(), dtype, "{descr}");
            assert_eq!(t.shape(), &[2], "{descr}");
            assert_eq!(t.to_scalars(), values, "{descr}");
        }
    }

    #[test]
    fn reads_shapes_scalars_and_empty() {
        let t = read_npy(&v1(&dict("<i4", "()"), &42i32.to_le_bytes())).unwrap();
        assert_eq!(t.shape(), &[] as &[usize]);
        assert_eq!(t.to_scalars(), vec![Scalar::I(42)]);

        let t = read_npy(&v1(&dict("<f4", "(0, 3)"), &[])).unwrap();
        assert_eq!(t.shape(), &[0, 3]);
        assert!(t.is_empty());

        // Double quotes, no trailing comma, extra spaces: still a valid Python dict.
        let t = read_npy(&v1(
            "{\"descr\": \"<u2\", \"shape\": ( 1 , 2 ), \"fortran_order\": False}",
            &[1, 0, 2, 0],
        ))
        .unwrap();
        assert_eq!(t.shape(), &[1, 2]);
        assert_eq!(t.to_scalars(), vec![Scalar::U(1), Scalar::U(2)]);
    }

    #[test]
    fn reads_versions_2_and_3() {
        for major in [2u8, 3] {
            let mut header = dict("<i2", "(1,)");
            while !(12 + header.len() + 1).is_multiple_of(64) {
                header.push(' ');
            }
            header.push('\n');
            let mut bytes = b"\x93NUMPY".to_vec();
            bytes.extend_from_slice(&[major, 0]);
            bytes.extend_from_slice(&(header.len() as u32).to_le_bytes());
            bytes.extend_from_slice(header.as_bytes());
            bytes.extend_from_slice(&[0x07, 0x00]);
            let t = read_npy(&bytes).unwrap();
            assert_eq!(t.to_scalars(), vec![Scalar::I(7)]);
        }
    }

    #[test]
    fn converts_big_endian() {
        let t = read_npy(&v1(
            &dict(">i4", "(2,)"),
            &[0, 0, 1, 0, 0xff, 0xff, 0xff, 0xfe],
        ))
        .unwrap();
        assert_eq!(t.dtype(), DType::S32);
        assert_eq!(t.to_scalars(), vec![Scalar::I(256), Scalar::I(-2)]);
        // 0x40490fdb is f32 pi.
        let t = read_npy(&v1(&dict(">f4", "()"), &[0x40, 0x49, 0x0f, 0xdb])).unwrap();
        assert_eq!(t.to_scalars(), vec![Scalar::F(std::f32::consts::PI as f64)]);
        // Single bytes have no byte order.
        let t = read_npy(&v1(&dict(">u1", "(1,)"), &[200])).unwrap();
        assert_eq!(t.to_scalars(), vec![Scalar::U(200)]);
    }

    #[test]
    fn converts_fortran_order() {
        // The 2x3 matrix [[1, 2, 3], [4, 5, 6]] in column-major order is 1 4 2 5 3 6.
        let d = "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 3), }";
        let t = read_npy(&v1(d, &[1, 4, 2, 5, 3, 6])).unwrap();
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.bytes(), &[1, 2, 3, 4, 5, 6]);
        // 2x2x2: element (i, j, k) sits at i + 2j + 4k in Fortran order; store value 100i+10j+k.
        let mut fdata = [0u8; 8];
        for i in 0..2 {
            for j in 0..2 {
                for k in 0..2 {
                    fdata[i + 2 * j + 4 * k] = (100 * i + 10 * j + k) as u8;
                }
            }
        }
        let d = "{'descr': '|u1', 'fortran_order': True, 'shape': (2, 2, 2), }";
        let t = read_npy(&v1(d, &fdata)).unwrap();
        assert_eq!(t.bytes(), &[0, 1, 10, 11, 100, 101, 110, 111]);
    }

    /// A file as NumPy 2.x writes it for
    /// `np.lib.format.write_array(f, np.asfortranarray(np.arange(6, dtype='>i2').reshape(2, 3)), version=(3, 0))`:
    /// version 3.0, big-endian, Fortran order, header padded to 128 bytes.
    #[test]
    fn reads_a_numpy_written_fortran_big_endian_v3_file() {
        let mut bytes = b"\x93NUMPY\x03\x00\x74\x00\x00\x00".to_vec();
        let dict = "{'descr': '>i2', 'fortran_order': True, 'shape': (2, 3), }";
        bytes.extend_from_slice(dict.as_bytes());
        bytes.extend(std::iter::repeat_n(b' ', 0x74 - dict.len() - 1));
        bytes.push(b'\n');
        bytes.extend_from_slice(&[0, 0, 0, 3, 0, 1, 0, 4, 0, 2, 0, 5]);
        assert_eq!(bytes.len(), 140);
        let t = read_npy(&bytes).unwrap();
        assert_eq!(t.dtype(), DType::S16);
        assert_eq!(t.shape(), &[2, 3]);
        assert_eq!(t.to_scalars(), (0..6).map(Scalar::I).collect::<Vec<_>>());
    }

    #[test]
    fn rejects_malformed_files() {
        let good = v1(&dict("<i4", "(2,)"), &[0; 8]);
        assert_eq!(read_npy(b""), Err(NpyError::BadMagic));
        assert_eq!(read_npy(b"\x93NUMPX\x01\x00"), Err(NpyError::BadMagic));
        assert!(matches!(
            read_npy(b"\x93NUMPY"),
            Err(NpyError::Truncated(_))
        ));
        assert!(matches!(
            read_npy(b"\x93NUMPY\x01\x00\x10"),
            Err(NpyError::Truncated(_))
        ));
        assert!(matches!(
            read_npy(b"\x93NUMPY\x02\x00\x10\x00"),
            Err(NpyError::Truncated(_))
        ));
        assert_eq!(
            read_npy(b"\x93NUMPY\x04\x00\x00\x00"),
            Err(NpyError::Version { major: 4, minor: 0 })
        );
        assert_eq!(
            read_npy(b"\x93NUMPY\x01\x01\x00\x00"),
            Err(NpyError::Version { major: 1, minor: 1 })
        );
        // Header shorter than its declared length.
        assert!(matches!(read_npy(&good[..40]), Err(NpyError::Truncated(_))));
        // Data truncated or with trailing bytes.
        assert!(matches!(
            read_npy(&good[..good.len() - 1]),
            Err(NpyError::DataLength {
                expected: 8,
                got: 7,
                ..
            })
        ));
        let mut long = good.clone();
        long.push(0);
        assert!(matches!(
            read_npy(&long),
            Err(NpyError::DataLength {
                expected: 8,
                got: 9,
                ..
            })
        ));
        // Header length field claiming far more than the file holds.
        assert!(matches!(
            read_npy(b"\x93NUMPY\x02\x00\xff\xff\xff\x7f{}"),
            Err(NpyError::Header(_))
        ));
    }

    #[test]
    fn rejects_bad_headers() {
        let h = |d: &str| read_npy(&v1(d, &[]));
        assert!(matches!(h("not a dict"), Err(NpyError::Header(_))));
        assert!(
            matches!(h("{'descr': '<f4', 'shape': (0,), }"), Err(NpyError::Header(m)) if m.contains("fortran_order"))
        );
        assert!(
            matches!(h("{'fortran_order': False, 'shape': (0,), }"), Err(NpyError::Header(m)) if m.contains("descr"))
        );
        assert!(
            matches!(h("{'descr': '<f4', 'fortran_order': False}"), Err(NpyError::Header(m)) if m.contains("shape"))
        );
        assert!(matches!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (-1,), }"),
            Err(NpyError::Header(_))
        ));
        assert!(matches!(
            h("{'descr': '<f4', 'fortran_order': Maybe, 'shape': (0,), }"),
            Err(NpyError::Header(_))
        ));
        assert!(matches!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (0,), 'x': 1}"),
            Err(NpyError::Header(_))
        ));
        assert!(matches!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (0,)"),
            Err(NpyError::Header(_))
        ));
        assert!(matches!(
            h("{'descr': [('a', '<f4')], 'fortran_order': False, 'shape': (0,)}"),
            Err(NpyError::Header(_))
        ));
        assert!(matches!(
            h("{'descr': '<f4', 'fortran_order': False, 'shape': (0,)} junk"),
            Err(NpyError::Header(_))
        ));
        assert!(matches!(h("{'descr: '<f4'}"), Err(NpyError::Header(_))));
        // Unsupported dtypes.
        for d in ["<c8", "<U3", "|O", "<f16", "<M8[s]", "f"] {
            assert_eq!(
                h(&dict(d, "(0,)")).map(|_| ()),
                Err(NpyError::DType(d.to_string())),
                "{d}"
            );
        }
        // Non-UTF-8 header.
        let mut bad = v1(&dict("<f4", "(0,)"), &[]);
        bad[12] = 0xff;
        assert!(matches!(read_npy(&bad), Err(NpyError::Header(_))));
    }

    #[test]
    fn rejects_oversized_shapes_without_allocating() {
        let huge = format!("({}, {})", usize::MAX / 2, 4);
        assert!(matches!(
            read_npy(&v1(&dict("<f8", &huge), &[])),
            Err(NpyError::TooLarge(_))
        ));
        // Fits in usize, but the data is not there: rejected before allocating 8 TB.
        assert!(matches!(
            read_npy(&v1(&dict("<f8", "(1000000, 1000000)"), &[0; 16])),
            Err(NpyError::DataLength { .. })
        ));
        let big = format!("({},)", u128::MAX);
        assert!(matches!(
            read_npy(&v1(&dict("<f8", &big), &[])),
            Err(NpyError::Header(_))
        ));
    }

    #[test]
    fn writes_a_numpy_compatible_header() {
        let t = Tensor::from_scalars(
            TensorType::new(DType::S32, vec![2, 3]),
            &[1, 2, 3, 4, 5, 6].map(Scalar::I),
        )
        .unwrap();
        let bytes = write_npy(&t);
        assert_eq!(&bytes[..8], b"\x93NUMPY\x01\x00");
        let hlen = u16::from_le_bytes([bytes[8], bytes[9]]) as usize;
        assert_eq!((10 + hlen) % 64, 0);
        let header = std::str::from_utf8(&bytes[10..10 + hlen]).unwrap();
        assert!(header.starts_with("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }"));
        assert!(header.ends_with(" \n"));
        assert_eq!(&bytes[10 + hlen..], t.bytes());

        let s = Tensor::from_scalars(TensorType::scalar(DType::F64), &[Scalar::F(2.0)]).unwrap();
        assert!(String::from_utf8_lossy(&write_npy(&s)).contains("'shape': (), "));
        let v = Tensor::zeros(TensorType::new(DType::U8, vec![5])).unwrap();
        assert!(
            String::from_utf8_lossy(&write_npy(&v))
                .contains("'descr': '|u1', 'fortran_order': False, 'shape': (5,), ")
        );
    }

    #[test]
    fn round_trips_every_dtype() {
        for dtype in DType::ALL {
            let ty = TensorType::new(dtype, vec![2, 2]);
            let values: Vec<Scalar> = [0i64, 1, 2, 3]
                .iter()
                .map(|&v| {
                    if dtype.is_float() {
                        Scalar::F(v as f64 - 1.5)
                    } else {
                        Scalar::I(v)
                    }
                })
                .collect();
            let t = Tensor::from_scalars(ty, &values).unwrap();
            let back = read_npy(&write_npy(&t)).unwrap();
            if dtype == DType::BF16 {
                assert_eq!(back.dtype(), DType::F32);
                assert_eq!(back.to_scalars(), t.to_scalars());
            } else {
                assert_eq!(back, t, "{dtype}");
            }
        }
        let empty = Tensor::zeros(TensorType::new(DType::F32, vec![3, 0])).unwrap();
        assert_eq!(read_npy(&write_npy(&empty)).unwrap(), empty);
    }
}
