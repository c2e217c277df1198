//! Arus protocol code generator.
//!
//! Reads Kafka's JSON message definitions (every `*Request.json`, `*Response.json`, the two
//! headers and the `data` specs such as `ConsumerProtocolSubscription`) plus
//! `error-codes.tsv`, and writes Rust source for `arus-protocol` into its `src/generated/`
//! directory: one module per message, `api_key.rs`, `error_code.rs` and a
//! `mod.rs` holding the `Request`/`Response` dispatch enums. When `<spec-dir>/coordinator-records`
//! exists, its `data` specs (the `__consumer_offsets` / `__transaction_state` record keys and
//! values) are generated the same way into `src/generated/coordinator/` (module
//! `arus_protocol::coordinator`). The output is run through `rustfmt` and committed.
//!
//! Run from the repository root:
//!
//! ```text
//! cargo run -p arus-codegen -- ../shared/kafka-message-specs-4.4.0 crates/arus-protocol/src/generated
//! ```

use anyhow::{Context, Result, anyhow, bail};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

// ---------------------------------------------------------------------------------------------
// Spec model
// ---------------------------------------------------------------------------------------------

#[derive(Clone, Copy, Debug, PartialEq)]
enum Versions {
    None,
    Range(i16, Option<i16>),
}

impl Versions {
    fn parse(s: &str) -> Result<Versions> {
        let s = s.trim();
        if s == "none" || s.is_empty() {
            return Ok(Versions::None);
        }
        if let Some(a) = s.strip_suffix('+') {
            return Ok(Versions::Range(a.parse()?, None));
        }
        if let Some((a, b)) = s.split_once('-') {
            return Ok(Versions::Range(a.parse()?, Some(b.parse()?)));
        }
        let v: i16 = s.parse()?;
        Ok(Versions::Range(v, Some(v)))
    }
    fn contains(&self, v: i16) -> bool {
        match *self {
            Versions::None => false,
            Versions::Range(a, b) => v >= a && b.is_none_or(|b| v <= b),
        }
    }
    /// Rust boolean expression for "version is in this range", given the message's
    /// valid range (so always-true checks collapse to `true`).
    fn cond(&self, valid: (i16, i16)) -> String {
        match *self {
            Versions::None => "false".into(),
            Versions::Range(a, b) => {
                let lo = a <= valid.0;
                let hi = b.is_none_or(|b| b >= valid.1);
                match (lo, hi) {
                    (true, true) => "true".into(),
                    (false, true) => format!("version >= {a}"),
                    (true, false) => format!("version <= {}", b.unwrap()),
                    (false, false) => {
                        let b = b.unwrap();
                        if a == b {
                            format!("version == {a}")
                        } else {
                            format!("({a}..={b}).contains(&version)")
                        }
                    }
                }
            }
        }
    }
    fn any_in(&self, valid: (i16, i16)) -> bool {
        (valid.0..=valid.1).any(|v| self.contains(v))
    }
}

#[derive(Clone, Debug, PartialEq)]
enum Prim {
    Bool,
    Int8,
    Int16,
    Uint16,
    Int32,
    Uint32,
    Int64,
    Float64,
    Uuid,
    Str,
    Bytes,
    Records,
}

#[derive(Clone, Debug)]
enum Ty {
    Prim(Prim),
    Struct(String),
    Array(Box<Ty>),
}

fn parse_prim(s: &str) -> Option<Prim> {
    Some(match s {
        "bool" => Prim::Bool,
        "int8" => Prim::Int8,
        "int16" => Prim::Int16,
        "uint16" => Prim::Uint16,
        "int32" => Prim::Int32,
        "uint32" => Prim::Uint32,
        "int64" => Prim::Int64,
        "float64" => Prim::Float64,
        "uuid" => Prim::Uuid,
        "string" => Prim::Str,
        "bytes" => Prim::Bytes,
        "records" => Prim::Records,
        _ => return None,
    })
}

fn parse_ty(s: &str) -> Ty {
    if let Some(e) = s.strip_prefix("[]") {
        Ty::Array(Box::new(parse_ty(e)))
    } else if let Some(p) = parse_prim(s) {
        Ty::Prim(p)
    } else {
        Ty::Struct(s.to_string())
    }
}

#[derive(Clone, Debug)]
struct Field {
    name: String,
    ty: Ty,
    versions: Versions,
    nullable: Versions,
    tagged: Versions,
    tag: Option<u32>,
    ignorable: bool,
    flexible_override: Option<Versions>,
    default: Option<String>,
    about: String,
}

#[derive(Clone, Debug)]
struct StructDef {
    name: String,
    fields: Vec<Field>,
    about: String,
}

#[derive(Debug)]
struct Spec {
    name: String,
    kind: String,
    api_key: Option<i16>,
    valid: (i16, i16),
    flexible: Versions,
    listeners: Vec<String>,
    top: StructDef,
    structs: Vec<StructDef>,
}

fn strip_comments(s: &str) -> String {
    s.lines()
        .filter(|l| !l.trim_start().starts_with("//"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn str_field(v: &Value, k: &str) -> Option<String> {
    v.get(k).and_then(|x| match x {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    })
}

fn parse_fields(
    arr: &[Value],
    structs: &mut BTreeMap<String, StructDef>,
    order: &mut Vec<String>,
) -> Result<Vec<Field>> {
    let mut out = Vec::new();
    for f in arr {
        let name = str_field(f, "name").ok_or_else(|| anyhow!("field without name"))?;
        let tys = str_field(f, "type").ok_or_else(|| anyhow!("field {name} without type"))?;
        let ty = parse_ty(&tys);
        if let Some(sub) = f.get("fields").and_then(|x| x.as_array()) {
            let sname = match &ty {
                Ty::Struct(s) => s.clone(),
                Ty::Array(e) => match &**e {
                    Ty::Struct(s) => s.clone(),
                    _ => bail!("field {name} has fields but primitive type"),
                },
                _ => bail!("field {name} has fields but primitive type"),
            };
            let fields = parse_fields(sub, structs, order)?;
            if !structs.contains_key(&sname) {
                order.push(sname.clone());
                structs.insert(
                    sname.clone(),
                    StructDef {
                        name: sname,
                        fields,
                        about: str_field(f, "about").unwrap_or_default(),
                    },
                );
            }
        }
        let versions = Versions::parse(&str_field(f, "versions").unwrap_or_default())?;
        let nullable = Versions::parse(&str_field(f, "nullableVersions").unwrap_or_default())?;
        let tagged = Versions::parse(&str_field(f, "taggedVersions").unwrap_or_default())?;
        let tag = str_field(f, "tag").map(|t| t.parse()).transpose()?;
        let flexible_override = str_field(f, "flexibleVersions")
            .map(|s| Versions::parse(&s))
            .transpose()?;
        out.push(Field {
            name,
            ty,
            versions,
            nullable,
            tagged,
            tag,
            ignorable: f
                .get("ignorable")
                .and_then(|x| x.as_bool())
                .unwrap_or(false),
            flexible_override,
            default: str_field(f, "default"),
            about: str_field(f, "about").unwrap_or_default(),
        });
    }
    Ok(out)
}

/// Loads one spec file. `Ok(None)` for a message Kafka has removed (`"validVersions":
/// "none"`, e.g. LeaderAndIsr since 4.0): there is nothing to generate for it.
fn load_spec(path: &Path) -> Result<Option<Spec>> {
    let text = std::fs::read_to_string(path)?;
    let v: Value = serde_json::from_str(&strip_comments(&text))
        .with_context(|| format!("parsing {}", path.display()))?;
    let name = str_field(&v, "name").ok_or_else(|| anyhow!("no name"))?;
    let kind = str_field(&v, "type").unwrap_or_default();
    let valid = match Versions::parse(&str_field(&v, "validVersions").unwrap_or_default())? {
        Versions::Range(a, Some(b)) => (a, b),
        Versions::None => return Ok(None),
        other => bail!("{name}: bad validVersions {other:?}"),
    };
    let flexible = Versions::parse(&str_field(&v, "flexibleVersions").unwrap_or_default())?;
    let mut structs = BTreeMap::new();
    let mut order = Vec::new();
    if let Some(cs) = v.get("commonStructs").and_then(|x| x.as_array()) {
        for c in cs {
            let sname = str_field(c, "name").ok_or_else(|| anyhow!("common struct name"))?;
            let fields = parse_fields(
                c.get("fields")
                    .and_then(|x| x.as_array())
                    .map_or(&[][..], |a| a),
                &mut structs,
                &mut order,
            )?;
            order.push(sname.clone());
            structs.insert(
                sname.clone(),
                StructDef {
                    name: sname,
                    fields,
                    about: str_field(c, "about").unwrap_or_default(),
                },
            );
        }
    }
    let fields = parse_fields(
        v.get("fields")
            .and_then(|x| x.as_array())
            .map_or(&[][..], |a| a),
        &mut structs,
        &mut order,
    )?;
    let listeners = v
        .get("listeners")
        .and_then(|x| x.as_array())
        .map(|a| {
            a.iter()
                .filter_map(|s| s.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default();
    Ok(Some(Spec {
        top: StructDef {
            name: name.clone(),
            fields,
            about: String::new(),
        },
        name,
        kind,
        api_key: str_field(&v, "apiKey").map(|s| s.parse()).transpose()?,
        valid,
        flexible,
        listeners,
        structs: order.iter().map(|n| structs[n].clone()).collect::<Vec<_>>(),
    }))
}

// ---------------------------------------------------------------------------------------------
// Naming
// ---------------------------------------------------------------------------------------------

fn snake(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        if c.is_ascii_uppercase() {
            let prev = if i > 0 { Some(chars[i - 1]) } else { None };
            let next = chars.get(i + 1).copied();
            let boundary = match prev {
                None => false,
                Some(p) if p.is_ascii_lowercase() || p.is_ascii_digit() => true,
                Some(p) if p.is_ascii_uppercase() => next.is_some_and(|n| n.is_ascii_lowercase()),
                _ => false,
            };
            if boundary {
                out.push('_');
            }
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

const KEYWORDS: &[&str] = &[
    "as", "break", "const", "continue", "crate", "else", "enum", "extern", "false", "fn", "for",
    "if", "impl", "in", "let", "loop", "match", "mod", "move", "mut", "pub", "ref", "return",
    "self", "static", "struct", "super", "trait", "true", "type", "unsafe", "use", "where",
    "while", "async", "await", "dyn", "abstract", "become", "box", "do", "final", "macro",
    "override", "priv", "typeof", "unsized", "virtual", "yield", "try", "gen",
];

fn field_ident(name: &str) -> String {
    let s = snake(name);
    if KEYWORDS.contains(&s.as_str()) {
        format!("r#{s}")
    } else {
        s
    }
}

fn camel_from_upper_snake(s: &str) -> String {
    s.split('_')
        .map(|w| {
            let mut c = w.chars();
            match c.next() {
                Some(f) => f.to_ascii_uppercase().to_string() + &c.as_str().to_ascii_lowercase(),
                None => String::new(),
            }
        })
        .collect()
}

// ---------------------------------------------------------------------------------------------
// Type / expression generation
// ---------------------------------------------------------------------------------------------

struct Ctx {
    valid: (i16, i16),
}

impl Field {
    /// The nullability condition, or "true" when the field is nullable in every valid version
    /// in which it exists.
    fn null_cond(&self, valid: (i16, i16)) -> String {
        if (valid.0..=valid.1)
            .filter(|&v| self.versions.contains(v))
            .all(|v| self.nullable.contains(v))
        {
            "true".into()
        } else {
            self.nullable.cond(valid)
        }
    }
    fn is_option(&self, valid: (i16, i16)) -> bool {
        matches!(self.ty, Ty::Prim(Prim::Records))
            || (self.nullable.any_in(valid) && self.versions.any_in(valid))
            || self.default.as_deref() == Some("null")
    }
}

fn base_rust_ty(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => match p {
            Prim::Bool => "bool",
            Prim::Int8 => "i8",
            Prim::Int16 => "i16",
            Prim::Uint16 => "u16",
            Prim::Int32 => "i32",
            Prim::Uint32 => "u32",
            Prim::Int64 => "i64",
            Prim::Float64 => "f64",
            Prim::Uuid => "crate::Uuid",
            Prim::Str => "String",
            Prim::Bytes | Prim::Records => "::bytes::Bytes",
        }
        .to_string(),
        Ty::Struct(s) => s.clone(),
        Ty::Array(e) => format!("Vec<{}>", base_rust_ty(e)),
    }
}

fn rust_ty(f: &Field, ctx: &Ctx) -> String {
    let b = base_rust_ty(&f.ty);
    if f.is_option(ctx.valid) {
        format!("Option<{b}>")
    } else {
        b
    }
}

fn parse_int(s: &str) -> Result<i128> {
    let s = s.trim();
    let (neg, body) = match s.strip_prefix('-') {
        Some(b) => (true, b),
        None => (false, s),
    };
    let v = if let Some(h) = body.strip_prefix("0x").or_else(|| body.strip_prefix("0X")) {
        i128::from_str_radix(h, 16)?
    } else {
        body.parse::<i128>()?
    };
    Ok(if neg { -v } else { v })
}

fn default_expr(f: &Field, ctx: &Ctx) -> Result<String> {
    let opt = f.is_option(ctx.valid);
    let d = f.default.as_deref();
    if d == Some("null") {
        return Ok("None".into());
    }
    let inner = match &f.ty {
        Ty::Prim(p) => match p {
            Prim::Bool => match d.map(|s| s.to_ascii_lowercase()) {
                Some(s) if s == "true" => "true".into(),
                _ => "false".into(),
            },
            Prim::Int8 | Prim::Int16 | Prim::Uint16 | Prim::Int32 | Prim::Uint32 | Prim::Int64 => {
                match d {
                    Some(s) if !s.is_empty() => parse_int(s)?.to_string(),
                    _ => "0".into(),
                }
            }
            Prim::Float64 => match d {
                Some(s) if !s.is_empty() => format!("{:?}", s.parse::<f64>()?),
                _ => "0.0".into(),
            },
            Prim::Uuid => "crate::Uuid::ZERO".into(),
            Prim::Str => match d {
                Some(s) if !s.is_empty() => format!("String::from({s:?})"),
                _ => "String::new()".into(),
            },
            Prim::Bytes => "::bytes::Bytes::new()".into(),
            Prim::Records => return Ok("None".into()),
        },
        Ty::Struct(s) => format!("{s}::default()"),
        Ty::Array(e) => format!("Vec::<{}>::new()", base_rust_ty(e)),
    };
    Ok(if opt { format!("Some({inner})") } else { inner })
}

/// Expression reading one non-optional value of type `ty` from `buf` (an `&mut Bytes`),
/// with `flex` the name of a boolean variable telling whether compact encodings are used.
fn read_value(ty: &Ty, nullable: bool, buf: &str, flex: &str, fname: &str) -> String {
    match ty {
        Ty::Prim(p) => match p {
            Prim::Bool => format!("c::read_bool({buf}, {fname})?"),
            Prim::Int8 => format!("c::read_i8({buf}, {fname})?"),
            Prim::Int16 => format!("c::read_i16({buf}, {fname})?"),
            Prim::Uint16 => format!("c::read_u16({buf}, {fname})?"),
            Prim::Int32 => format!("c::read_i32({buf}, {fname})?"),
            Prim::Uint32 => format!("c::read_u32({buf}, {fname})?"),
            Prim::Int64 => format!("c::read_i64({buf}, {fname})?"),
            Prim::Float64 => format!("c::read_f64({buf}, {fname})?"),
            Prim::Uuid => format!("c::read_uuid({buf}, {fname})?"),
            Prim::Str => {
                if nullable {
                    format!("c::read_nullable_string({buf}, {flex}, {fname})?")
                } else {
                    format!("c::read_string({buf}, {flex}, {fname})?")
                }
            }
            Prim::Bytes | Prim::Records => {
                if nullable {
                    format!("c::read_nullable_bytes({buf}, {flex}, {fname})?")
                } else {
                    format!("c::read_bytes({buf}, {flex}, {fname})?")
                }
            }
        },
        Ty::Struct(s) => {
            if nullable {
                format!("c::read_nullable_struct({buf}, {fname}, |b| {s}::read(b, version))?")
            } else {
                format!("{s}::read({buf}, version)?")
            }
        }
        Ty::Array(e) => {
            let elem = read_value(e, false, "b", flex, fname);
            let min = elem_min_size(e);
            if nullable {
                format!("c::read_nullable_array({buf}, {flex}, {fname}, {min}, |b| Ok({elem}))?")
            } else {
                format!("c::read_array({buf}, {flex}, {fname}, {min}, |b| Ok({elem}))?")
            }
        }
    }
}

fn elem_min_size(ty: &Ty) -> usize {
    match ty {
        Ty::Prim(p) => match p {
            Prim::Bool | Prim::Int8 => 1,
            Prim::Int16 | Prim::Uint16 => 2,
            Prim::Int32 | Prim::Uint32 => 4,
            Prim::Int64 | Prim::Float64 => 8,
            Prim::Uuid => 16,
            Prim::Str | Prim::Bytes | Prim::Records => 1,
        },
        // A struct may legitimately be empty in a non-flexible version; Kafka still bounds the
        // element count by the bytes remaining, and so do we (minimum 1).
        Ty::Struct(_) | Ty::Array(_) => 1,
    }
}

/// Statement(s) writing value expression `v` (a reference-like expression) of type `ty`.
fn write_value(ty: &Ty, nullable: bool, v: &str, out: &str, flex: &str, fname: &str) -> String {
    // `v` is a place expression (e.g. `self.x` or `(*e)`).
    match ty {
        Ty::Prim(p) => match p {
            Prim::Bool => format!("c::write_bool({out}, {v});"),
            Prim::Int8 => format!("c::write_i8({out}, {v});"),
            Prim::Int16 => format!("c::write_i16({out}, {v});"),
            Prim::Uint16 => format!("c::write_u16({out}, {v});"),
            Prim::Int32 => format!("c::write_i32({out}, {v});"),
            Prim::Uint32 => format!("c::write_u32({out}, {v});"),
            Prim::Int64 => format!("c::write_i64({out}, {v});"),
            Prim::Float64 => format!("c::write_f64({out}, {v});"),
            Prim::Uuid => format!("c::write_uuid({out}, &{v});"),
            Prim::Str => {
                if nullable {
                    format!("c::write_nullable_string({out}, {flex}, {v}.as_deref(), {fname})?;")
                } else {
                    format!("c::write_string({out}, {flex}, &{v}, {fname})?;")
                }
            }
            // `records` go through their own writer so that a splice plan can leave them out
            // of the frame (zero-copy fetch, see arus_protocol::splice).
            Prim::Records => {
                if nullable {
                    format!("c::write_records({out}, {flex}, {v}.as_ref(), {fname})?;")
                } else {
                    format!("c::write_records({out}, {flex}, Some(&{v}), {fname})?;")
                }
            }
            Prim::Bytes => {
                if nullable {
                    format!("c::write_nullable_bytes({out}, {flex}, {v}.as_ref(), {fname})?;")
                } else {
                    format!("c::write_bytes({out}, {flex}, &{v}, {fname})?;")
                }
            }
        },
        Ty::Struct(_) => {
            if nullable {
                format!(
                    "c::write_nullable_struct({out}, {v}.as_ref(), |o, s| s.write(o, version))?;"
                )
            } else {
                format!("{v}.write({out}, version)?;")
            }
        }
        Ty::Array(e) => {
            let elem = write_value(e, false, "(*e)", "o", flex, fname);
            if nullable {
                format!(
                    "c::write_nullable_array({out}, {flex}, {v}.as_deref(), {fname}, |o, e| {{ {elem} Ok(()) }})?;"
                )
            } else {
                format!(
                    "c::write_array({out}, {flex}, &{v}, {fname}, |o, e| {{ {elem} Ok(()) }})?;"
                )
            }
        }
    }
}

/// Random value expression of type `ty` (not optional).
fn random_value(ty: &Ty) -> String {
    match ty {
        Ty::Prim(p) => match p {
            Prim::Bool => "rng.bool()".into(),
            Prim::Int8 => "rng.next_u64() as i8".into(),
            Prim::Int16 => "rng.next_u64() as i16".into(),
            Prim::Uint16 => "rng.next_u64() as u16".into(),
            Prim::Int32 => "rng.next_u64() as i32".into(),
            Prim::Uint32 => "rng.next_u64() as u32".into(),
            Prim::Int64 => "rng.next_u64() as i64".into(),
            Prim::Float64 => "rng.f64()".into(),
            Prim::Uuid => "rng.uuid()".into(),
            Prim::Str => "rng.string()".into(),
            Prim::Bytes | Prim::Records => "rng.bytes()".into(),
        },
        Ty::Struct(s) => format!("{s}::random(rng, version)"),
        Ty::Array(e) => {
            let inner = random_value(e);
            format!("{{ let n = rng.small_len(); (0..n).map(|_| {inner}).collect() }}")
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Struct generation
// ---------------------------------------------------------------------------------------------

fn doc(out: &mut String, text: &str) {
    let text = text.trim();
    if !text.is_empty() {
        for line in text.lines() {
            let line = line.trim().replace('[', "\\[").replace(']', "\\]");
            let _ = writeln!(out, "/// {line}");
        }
    }
}

fn gen_struct(out: &mut String, s: &StructDef, spec: &Spec, top: bool) -> Result<()> {
    let ctx = Ctx { valid: spec.valid };
    let valid = spec.valid;
    // Fields that exist in at least one valid version.
    let fields: Vec<&Field> = s
        .fields
        .iter()
        .filter(|f| f.versions.any_in(valid))
        .collect();

    doc(out, &s.about);
    if top {
        let _ = writeln!(
            out,
            "/// `{}`: valid versions {}-{}, flexible {}.",
            s.name,
            valid.0,
            valid.1,
            match spec.flexible {
                Versions::None => "none".to_string(),
                Versions::Range(a, None) => format!("{a}+"),
                Versions::Range(a, Some(b)) => format!("{a}-{b}"),
            }
        );
    }
    out.push_str("#[derive(Debug, Clone, PartialEq)]\n");
    let _ = writeln!(out, "pub struct {} {{", s.name);
    for f in &fields {
        doc(out, &f.about);
        let _ = writeln!(out, "pub {}: {},", field_ident(&f.name), rust_ty(f, &ctx));
    }
    out.push_str("}\n\n");

    // Default
    let _ = writeln!(out, "impl Default for {} {{", s.name);
    out.push_str("fn default() -> Self {\n");
    if fields.is_empty() {
        out.push_str("Self {}\n");
    } else {
        out.push_str("Self {\n");
        for f in &fields {
            let _ = writeln!(out, "{}: {},", field_ident(&f.name), default_expr(f, &ctx)?);
        }
        out.push_str("}\n");
    }
    out.push_str("}\n}\n\n");

    let flex_cond = spec.flexible.cond(valid);
    let uses_flex = flex_cond != "false";

    // read
    let _ = writeln!(out, "impl c::Versioned for {} {{", s.name);
    out.push_str(
        "fn read(buf: &mut ::bytes::Bytes, version: i16) -> Result<Self, crate::DecodeError> {\n",
    );
    let _ = writeln!(out, "let flex = {flex_cond};");
    out.push_str("let _ = flex;\n");
    if fields.is_empty() {
        out.push_str("let this = Self::default();\n");
    } else {
        out.push_str("let mut this = Self::default();\n");
    }
    let qual = |f: &Field| format!("\"{}.{}\"", s.name, f.name);
    for f in &fields {
        let id = field_ident(&f.name);
        let opt = f.is_option(valid);
        let fname = qual(f);
        let fflex = match f.flexible_override {
            Some(v) => v.cond(valid),
            None => "flex".into(),
        };
        let mut body = String::new();
        let _ = writeln!(
            body,
            "this.{id} = {};",
            read_value(&f.ty, opt, "buf", &fflex, &fname)
        );
        let ncond = f.null_cond(valid);
        if opt && ncond != "true" {
            let _ = writeln!(
                body,
                "if this.{id}.is_none() && !({ncond}) {{ return Err(crate::DecodeError::UnexpectedNull {{ field: {fname} }}); }}"
            );
        }
        let vcond = f.versions.cond(valid);
        let tcond = f.tagged.cond(valid);
        let cond = if tcond == "false" {
            vcond
        } else if vcond == "true" {
            format!("!({tcond})")
        } else {
            format!("{vcond} && !({tcond})")
        };
        if cond == "true" {
            out.push_str(&body);
        } else {
            let _ = writeln!(out, "if {cond} {{\n{body}}}");
        }
    }
    // tagged section
    let mut tagged: Vec<&Field> = fields.iter().copied().filter(|f| f.tag.is_some()).collect();
    tagged.sort_by_key(|f| f.tag);
    if uses_flex {
        out.push_str("if flex {\n");
        let _ = writeln!(
            out,
            "let count = c::read_uvarint(buf, \"{}.<tagged fields>\")?;",
            s.name
        );
        out.push_str("for _ in 0..count {\n");
        let _ = writeln!(
            out,
            "let (tag, data) = c::read_tagged_field(buf, \"{}.<tagged fields>\")?;",
            s.name
        );
        if tagged.is_empty() {
            out.push_str("let _ = (tag, data);\n");
        } else {
            out.push_str("#[allow(unused_mut)]\nlet mut data = data;\n");
            out.push_str("match tag {\n");
            for f in &tagged {
                let id = field_ident(&f.name);
                let opt = f.is_option(valid);
                let tcond = f.tagged.cond(valid);
                let guard = if tcond == "true" {
                    String::new()
                } else {
                    format!(" if {tcond}")
                };
                let _ = writeln!(
                    out,
                    "{}{guard} => {{ this.{id} = {}; }}",
                    f.tag.unwrap(),
                    read_value(&f.ty, opt, "&mut data", "true", &qual(f))
                );
            }
            out.push_str("_ => {}\n}\n");
        }
        out.push_str("}\n}\n");
    }
    out.push_str("Ok(this)\n}\n\n");

    // write
    out.push_str(
        "fn write(&self, out: &mut ::bytes::BytesMut, version: i16) -> Result<(), crate::EncodeError> {\n",
    );
    let _ = writeln!(out, "let flex = {flex_cond};");
    out.push_str("let _ = flex;\n");
    for f in &fields {
        let id = field_ident(&f.name);
        let opt = f.is_option(valid);
        let fname = qual(f);
        let fflex = match f.flexible_override {
            Some(v) => v.cond(valid),
            None => "flex".into(),
        };
        let vcond = f.versions.cond(valid);
        let tcond = f.tagged.cond(valid);
        let mut body = String::new();
        let ncond = f.null_cond(valid);
        if opt && ncond != "true" {
            let _ = writeln!(
                body,
                "if self.{id}.is_none() && !({ncond}) {{ return Err(crate::EncodeError::NullNotAllowed {{ field: {fname}, version }}); }}"
            );
        }
        let w = write_value(&f.ty, opt, &format!("self.{id}"), "out", &fflex, &fname);
        if tcond == "false" {
            body.push_str(&w);
            body.push('\n');
        } else {
            let _ = writeln!(body, "if !({tcond}) {{ {w} }}");
        }
        let def = default_expr(f, &ctx)?;
        let absent = if f.ignorable {
            String::new()
        } else {
            format!(
                "else if self.{id} != {def} {{ return Err(crate::EncodeError::FieldNotSupported {{ field: {fname}, version }}); }}"
            )
        };
        if vcond == "true" {
            out.push_str(&body);
        } else {
            let _ = writeln!(out, "if {vcond} {{\n{body}}} {absent}");
        }
    }
    if uses_flex {
        out.push_str("if flex {\n");
        if tagged.is_empty() {
            out.push_str("c::write_uvarint(out, 0);\n");
        } else {
            out.push_str("let mut count: u32 = 0;\n");
            for f in &tagged {
                let id = field_ident(&f.name);
                let def = default_expr(f, &ctx)?;
                let _ = writeln!(
                    out,
                    "if {} && self.{id} != {def} {{ count += 1; }}",
                    f.tagged.cond(valid)
                );
            }
            out.push_str("c::write_uvarint(out, count);\n");
            for f in &tagged {
                let id = field_ident(&f.name);
                let opt = f.is_option(valid);
                let def = default_expr(f, &ctx)?;
                let w = write_value(&f.ty, opt, &format!("self.{id}"), "o", "true", &qual(f));
                let _ = writeln!(
                    out,
                    "if {} && self.{id} != {def} {{ c::write_tagged_field(out, {}, |o| {{ {w} Ok(()) }})?; }}",
                    f.tagged.cond(valid),
                    f.tag.unwrap()
                );
            }
        }
        out.push_str("}\n");
    }
    out.push_str("Ok(())\n}\n}\n\n");

    // random
    out.push_str("#[cfg(any(test, feature = \"testing\"))]\n");
    let _ = writeln!(out, "impl {} {{", s.name);
    out.push_str("/// A random instance setting only fields present in `version` (test helper).\n");
    out.push_str("pub fn random(rng: &mut crate::testing::Rng, version: i16) -> Self {\n");
    out.push_str("let _ = (&rng, version);\n");
    if fields.is_empty() {
        out.push_str("Self::default()\n");
    } else {
        out.push_str("let mut this = Self::default();\n");
        for f in &fields {
            let id = field_ident(&f.name);
            let opt = f.is_option(valid);
            let vcond = f.versions.cond(valid);
            let val = random_value(&f.ty);
            let assign = if opt {
                let ncond = f.null_cond(valid);
                format!(
                    "this.{id} = if ({ncond}) && rng.one_in(4) {{ None }} else {{ Some({val}) }};"
                )
            } else {
                format!("this.{id} = {val};")
            };
            if vcond == "true" {
                out.push_str(&assign);
                out.push('\n');
            } else {
                let _ = writeln!(out, "if {vcond} {{ {assign} }}");
            }
        }
        out.push_str("this\n");
    }
    out.push_str("}\n}\n\n");
    Ok(())
}

fn gen_message_file(spec: &Spec) -> Result<String> {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "// @generated by arus-codegen from {}.json. Do not edit by hand.",
        spec.name
    );
    out.push_str("//! `");
    out.push_str(&spec.name);
    out.push_str("` and its nested structs.\n");
    out.push_str(ALLOWS);
    out.push_str("\nuse crate::codec::{self as c, Versioned as _};\n\n");
    gen_struct(&mut out, &spec.top, spec, true)?;
    for s in &spec.structs {
        gen_struct(&mut out, s, spec, false)?;
    }
    // A coordinator or metadata record's `apiKey` is its record type: the int16 written in
    // front of the key (coordinator records) or of the record (metadata log).
    if let (Some(k), "coordinator-key" | "coordinator-value" | "metadata") =
        (spec.api_key, spec.kind.as_str())
    {
        let _ = writeln!(
            out,
            "impl {} {{\n/// The record type (`apiKey` of the spec).\npub const RECORD_TYPE: i16 = {k};\n}}\n",
            spec.name
        );
    }
    let _ = writeln!(out, "impl crate::Message for {} {{", spec.name);
    let _ = writeln!(
        out,
        "const VERSIONS: (i16, i16) = ({}, {});",
        spec.valid.0, spec.valid.1
    );
    out.push_str("fn decode(buf: &mut ::bytes::Bytes, version: i16) -> Result<Self, crate::DecodeError> { <Self as c::Versioned>::read(buf, version) }\n");
    out.push_str("fn encode(&self, out: &mut ::bytes::BytesMut, version: i16) -> Result<(), crate::EncodeError> { <Self as c::Versioned>::write(self, out, version) }\n");
    out.push_str("}\n");
    Ok(out)
}

const ALLOWS: &str = "#![allow(clippy::all, clippy::pedantic, unused_imports, unused_mut, unused_variables, unused_comparisons, unused_parens, non_snake_case, clippy::nursery)]\n";

// ---------------------------------------------------------------------------------------------
// api_key.rs, error_code.rs, mod.rs
// ---------------------------------------------------------------------------------------------

struct Api {
    key: i16,
    variant: String,
    req: Spec,
}

fn gen_api_key(apis: &[Api]) -> String {
    let mut o = String::new();
    o.push_str("// @generated by arus-codegen. Do not edit by hand.\n");
    o.push_str("//! Kafka API keys, their version ranges and header-version rules.\n\n");
    o.push_str("/// Every Kafka API key (variant name = request spec name minus `Request`).\n");
    o.push_str("#[repr(i16)]\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]\npub enum ApiKey {\n");
    for a in apis {
        let _ = writeln!(o, "{} = {},", a.variant, a.key);
    }
    o.push_str("}\n\n");
    o.push_str("static ALL: &[ApiKey] = &[\n");
    for a in apis {
        let _ = writeln!(o, "ApiKey::{},", a.variant);
    }
    o.push_str("];\n\n");
    o.push_str("impl ApiKey {\n");
    o.push_str("/// The API key for a wire value, if known.\npub fn from_i16(k: i16) -> Option<ApiKey> {\nmatch k {\n");
    for a in apis {
        let _ = writeln!(o, "{} => Some(ApiKey::{}),", a.key, a.variant);
    }
    o.push_str("_ => None,\n}\n}\n\n");
    o.push_str("/// The wire value.\npub fn key(self) -> i16 { self as i16 }\n\n");
    o.push_str("/// The API name, e.g. `\"Produce\"`.\npub fn name(self) -> &'static str {\nmatch self {\n");
    for a in apis {
        let _ = writeln!(o, "ApiKey::{0} => \"{0}\",", a.variant);
    }
    o.push_str("}\n}\n\n");
    o.push_str(
        "/// All API keys in ascending key order.\npub fn all() -> &'static [ApiKey] { ALL }\n\n",
    );
    o.push_str("/// `validVersions` of the request spec, as (min, max).\npub fn valid_versions(self) -> (i16, i16) {\nmatch self {\n");
    for a in apis {
        let _ = writeln!(
            o,
            "ApiKey::{} => ({}, {}),",
            a.variant, a.req.valid.0, a.req.valid.1
        );
    }
    o.push_str("}\n}\n\n");
    o.push_str("/// Whether `version` of this API uses flexible (compact + tagged fields) encoding.\npub fn is_flexible(self, version: i16) -> bool {\nmatch self {\n");
    for a in apis {
        let cond = match a.req.flexible {
            Versions::None => "false".to_string(),
            Versions::Range(x, None) => format!("version >= {x}"),
            Versions::Range(x, Some(y)) => format!("({x}..={y}).contains(&version)"),
        };
        let _ = writeln!(o, "ApiKey::{} => {cond},", a.variant);
    }
    o.push_str("}\n}\n\n");
    // ControlledShutdown v0 used request header v0; the API is gone from the specs since 4.0.
    if apis.iter().any(|a| a.variant == "ControlledShutdown") {
        o.push_str("/// Request header version for `version` of this API: 2 if flexible, else 1\n/// (ControlledShutdown v0 uses header v0).\npub fn request_header_version(self, version: i16) -> i16 {\nif self.is_flexible(version) { 2 } else if matches!(self, ApiKey::ControlledShutdown) && version == 0 { 0 } else { 1 }\n}\n\n");
    } else {
        o.push_str("/// Request header version for `version` of this API: 2 if flexible, else 1.\npub fn request_header_version(self, version: i16) -> i16 {\nif self.is_flexible(version) { 2 } else { 1 }\n}\n\n");
    }
    o.push_str("/// Response header version: 1 if flexible, else 0; ApiVersions always uses 0.\npub fn response_header_version(self, version: i16) -> i16 {\nif matches!(self, ApiKey::ApiVersions) { 0 } else if self.is_flexible(version) { 1 } else { 0 }\n}\n\n");
    o.push_str("/// The spec's `listeners` for this API.\npub fn listeners(self) -> &'static [&'static str] {\nmatch self {\n");
    for a in apis {
        let l: Vec<String> = a.req.listeners.iter().map(|s| format!("{s:?}")).collect();
        let _ = writeln!(o, "ApiKey::{} => &[{}],", a.variant, l.join(", "));
    }
    o.push_str("}\n}\n}\n\n");
    o.push_str("impl std::fmt::Display for ApiKey {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.name()) }\n}\n");
    o
}

fn gen_error_code(tsv: &str) -> Result<String> {
    let mut rows = Vec::new();
    for (i, line) in tsv.lines().enumerate() {
        if i == 0 || line.trim().is_empty() {
            continue;
        }
        let cols: Vec<&str> = line.split('\t').collect();
        let code: i16 = cols
            .first()
            .ok_or_else(|| anyhow!("bad row"))?
            .trim()
            .parse()?;
        let name = cols
            .get(1)
            .ok_or_else(|| anyhow!("bad row"))?
            .trim()
            .to_string();
        let retriable = cols.get(2).is_some_and(|s| s.trim() == "retriable");
        rows.push((code, name, retriable));
    }
    let mut o = String::new();
    o.push_str("// @generated by arus-codegen from error-codes.tsv. Do not edit by hand.\n");
    o.push_str("//! Kafka protocol error codes.\n\n");
    o.push_str("/// Every Kafka error code (variant = CamelCase of the Kafka name).\n");
    o.push_str(
        "#[repr(i16)]\n#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]\npub enum ErrorCode {\n",
    );
    for (c, n, _) in &rows {
        let _ = writeln!(o, "/// `{n}`\n{} = {c},", camel_from_upper_snake(n));
    }
    o.push_str("}\n\n");
    o.push_str("impl ErrorCode {\n");
    o.push_str("/// The wire value.\npub fn code(self) -> i16 { self as i16 }\n\n");
    o.push_str("/// The error code for a wire value, if known.\npub fn from_code(c: i16) -> Option<ErrorCode> {\nmatch c {\n");
    for (c, n, _) in &rows {
        let _ = writeln!(o, "{c} => Some(ErrorCode::{}),", camel_from_upper_snake(n));
    }
    o.push_str("_ => None,\n}\n}\n\n");
    o.push_str("/// Kafka's name, e.g. `\"UNKNOWN_TOPIC_OR_PARTITION\"`.\npub fn name(self) -> &'static str {\nmatch self {\n");
    for (_, n, _) in &rows {
        let _ = writeln!(o, "ErrorCode::{} => \"{n}\",", camel_from_upper_snake(n));
    }
    o.push_str("}\n}\n\n");
    o.push_str("/// Whether Kafka's clients treat this error as retriable.\npub fn is_retriable(self) -> bool {\nmatches!(self,\n");
    let r: Vec<String> = rows
        .iter()
        .filter(|x| x.2)
        .map(|(_, n, _)| format!("ErrorCode::{}", camel_from_upper_snake(n)))
        .collect();
    o.push_str(&r.join(" | "));
    o.push_str(")\n}\n}\n\n");
    o.push_str("impl std::fmt::Display for ErrorCode {\nfn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result { f.write_str(self.name()) }\n}\n");
    Ok(o)
}

/// A subdirectory of record specs and the module it is generated into.
struct RecordGroup {
    spec_dir: &'static str,
    module: &'static str,
    /// The spec `type`s the directory may hold.
    kinds: &'static [&'static str],
    /// The generated module's `//!` documentation.
    doc: &'static str,
}

const RECORD_GROUPS: &[RecordGroup] = &[
    RecordGroup {
        spec_dir: "coordinator-records",
        module: "coordinator",
        kinds: &["data", "coordinator-key", "coordinator-value"],
        doc: "Keys and values of the records Kafka's group, share and transaction coordinators \
              write to `__consumer_offsets`, `__share_group_state` and `__transaction_state` \
              (one module per spec). A record's type is the `int16` written in front of its key: \
              `RECORD_TYPE` (the spec's `apiKey`; in older specs, the key's `validVersions`). \
              Values carry their own versions.",
    },
    RecordGroup {
        spec_dir: "metadata-records",
        module: "metadata",
        kinds: &["metadata"],
        doc: "The records of KRaft's metadata log (`__cluster_metadata`), one module per spec. \
              `RECORD_TYPE` is the spec's `apiKey`, the record type in the metadata log's frame.",
    },
    RecordGroup {
        spec_dir: "raft-records",
        module: "raft",
        kinds: &["data"],
        doc: "KRaft's own files, such as the quorum-state file (`QuorumStateData`).",
    },
];

fn gen_record_mod(group: &RecordGroup, modules: &[(String, String)]) -> String {
    let mut o = String::new();
    let _ = writeln!(
        o,
        "// @generated by arus-codegen from {}/*.json. Do not edit by hand.",
        group.spec_dir
    );
    for line in wrap(group.doc, 92) {
        let _ = writeln!(o, "//! {line}");
    }
    o.push_str("//! Each type implements [`crate::Message`].\n\n");
    for (m, _) in modules {
        let _ = writeln!(o, "pub mod {m};");
    }
    o.push('\n');
    for (m, t) in modules {
        let _ = writeln!(o, "pub use {m}::{t};");
    }
    o
}

/// Greedy word wrap for generated doc comments.
fn wrap(text: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut line = String::new();
    for word in text.split_whitespace() {
        if !line.is_empty() && line.len() + 1 + word.len() > width {
            lines.push(std::mem::take(&mut line));
        }
        if !line.is_empty() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if !line.is_empty() {
        lines.push(line);
    }
    lines
}

fn gen_mod(apis: &[Api], modules: &[(String, String)], submodules: &[&str]) -> String {
    let mut o = String::new();
    o.push_str("// @generated by arus-codegen. Do not edit by hand.\n");
    o.push_str("//! Generated Kafka messages, API keys, error codes and dispatch enums.\n");
    o.push_str("#![allow(clippy::large_enum_variant)]\n\n");
    o.push_str("pub mod api_key;\npub mod error_code;\n");
    for m in submodules {
        let _ = writeln!(o, "pub mod {m};");
    }
    for (m, _) in modules {
        let _ = writeln!(o, "pub mod {m};");
    }
    o.push('\n');
    for (m, t) in modules {
        let _ = writeln!(o, "pub use {m}::{t};");
    }
    o.push_str("\nuse crate::{ApiKey, DecodeError, EncodeError, Message};\n\n");
    for (kind, suffix) in [("Request", "Request"), ("Response", "Response")] {
        let _ = writeln!(
            o,
            "/// A decoded {} body, one variant per API key.\n#[derive(Debug, Clone, PartialEq)]\npub enum {kind} {{",
            kind.to_lowercase()
        );
        for a in apis {
            let _ = writeln!(o, "{}({}{suffix}),", a.variant, a.variant);
        }
        o.push_str("}\n\n");
        let _ = writeln!(o, "impl {kind} {{");
        let _ = writeln!(
            o,
            "/// Decodes the {} body of `api_key` at `version` from the front of `buf`.\n/// Fails with `UnsupportedVersion` outside the spec's valid versions.",
            kind.to_lowercase()
        );
        let _ = writeln!(
            o,
            "pub fn decode(api_key: ApiKey, version: i16, buf: &mut ::bytes::Bytes) -> Result<{kind}, DecodeError> {{"
        );
        let _ = writeln!(
            o,
            "let (lo, hi) = api_key.valid_versions();\nif version < lo || version > hi {{ return Err(DecodeError::UnsupportedVersion {{ api_key, version }}); }}"
        );
        o.push_str("Ok(match api_key {\n");
        for a in apis {
            let _ = writeln!(
                o,
                "ApiKey::{0} => {kind}::{0}({0}{suffix}::decode(buf, version)?),",
                a.variant
            );
        }
        o.push_str("})\n}\n\n");
        let _ = writeln!(
            o,
            "/// Encodes the body (no header, no size prefix) at `version`."
        );
        o.push_str("pub fn encode(&self, out: &mut ::bytes::BytesMut, version: i16) -> Result<(), EncodeError> {\n");
        o.push_str("let api_key = self.api_key();\nlet (lo, hi) = api_key.valid_versions();\nif version < lo || version > hi { return Err(EncodeError::UnsupportedVersion { api_key, version }); }\n");
        o.push_str("match self {\n");
        for a in apis {
            let _ = writeln!(o, "{kind}::{}(m) => m.encode(out, version),", a.variant);
        }
        o.push_str("}\n}\n\n");
        o.push_str(
            "/// The API key of this body.\npub fn api_key(&self) -> ApiKey {\nmatch self {\n",
        );
        for a in apis {
            let _ = writeln!(o, "{kind}::{0}(_) => ApiKey::{0},", a.variant);
        }
        o.push_str("}\n}\n\n");
        let _ = writeln!(
            o,
            "/// A random body for `api_key` at `version` (test helper)."
        );
        o.push_str("#[cfg(any(test, feature = \"testing\"))]\n");
        let _ = writeln!(
            o,
            "pub fn random(api_key: ApiKey, rng: &mut crate::testing::Rng, version: i16) -> {kind} {{\nmatch api_key {{"
        );
        for a in apis {
            let _ = writeln!(
                o,
                "ApiKey::{0} => {kind}::{0}({0}{suffix}::random(rng, version)),",
                a.variant
            );
        }
        o.push_str("}\n}\n}\n\n");
        for a in apis {
            let _ = writeln!(
                o,
                "impl From<{0}{suffix}> for {kind} {{ fn from(m: {0}{suffix}) -> Self {{ {kind}::{0}(m) }} }}",
                a.variant
            );
        }
        o.push('\n');
    }
    o
}

// ---------------------------------------------------------------------------------------------

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().collect();
    if args.len() != 3 {
        bail!("usage: arus-codegen <spec-dir> <output-dir>");
    }
    let spec_dir = PathBuf::from(&args[1]);
    let out_dir = PathBuf::from(&args[2]);
    std::fs::create_dir_all(&out_dir)?;

    let mut specs = Vec::new();
    let mut paths: Vec<PathBuf> = std::fs::read_dir(&spec_dir)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    paths.sort();
    for p in &paths {
        let Some(spec) = load_spec(p)? else { continue };
        if matches!(
            spec.kind.as_str(),
            "request" | "response" | "header" | "data"
        ) {
            specs.push(spec);
        }
    }

    // Remove previously generated files so deleted specs don't linger.
    for e in std::fs::read_dir(&out_dir)? {
        let p = e?.path();
        if p.extension().is_some_and(|x| x == "rs") {
            std::fs::remove_file(&p)?;
        }
    }

    let mut modules = Vec::new();
    let mut written = Vec::new();
    for spec in &specs {
        let m = snake(&spec.name);
        let file = out_dir.join(format!("{m}.rs"));
        std::fs::write(&file, gen_message_file(spec)?)?;
        written.push(file);
        modules.push((m, spec.name.clone()));
    }

    // Pair requests and responses by API key.
    let mut reqs: BTreeMap<i16, Spec> = BTreeMap::new();
    let mut resps: BTreeMap<i16, Spec> = BTreeMap::new();
    for spec in specs {
        match (spec.kind.as_str(), spec.api_key) {
            ("request", Some(k)) => {
                reqs.insert(k, spec);
            }
            ("response", Some(k)) => {
                resps.insert(k, spec);
            }
            _ => {}
        }
    }
    let mut apis = Vec::new();
    let keys: BTreeSet<i16> = reqs.keys().copied().collect();
    for k in keys {
        let req = reqs.remove(&k).unwrap();
        let resp = resps
            .remove(&k)
            .ok_or_else(|| anyhow!("no response for api key {k}"))?;
        let variant = req
            .name
            .strip_suffix("Request")
            .ok_or_else(|| anyhow!("request name {}", req.name))?
            .to_string();
        if resp.name != format!("{variant}Response") {
            bail!("response name mismatch for {variant}: {}", resp.name);
        }
        apis.push(Api {
            key: k,
            variant,
            req,
        });
    }

    let f = out_dir.join("api_key.rs");
    std::fs::write(&f, gen_api_key(&apis))?;
    written.push(f);
    let tsv = std::fs::read_to_string(spec_dir.join("error-codes.tsv"))?;
    let f = out_dir.join("error_code.rs");
    std::fs::write(&f, gen_error_code(&tsv)?)?;
    written.push(f);
    // Record specs in subdirectories, each generated into its own module the same way as
    // messages: the coordinators' records, KRaft's metadata records and its quorum-state file.
    let mut submodules = Vec::new();
    for group in RECORD_GROUPS {
        let sub_spec_dir = spec_dir.join(group.spec_dir);
        let sub_out_dir = out_dir.join(group.module);
        if sub_out_dir.is_dir() {
            for e in std::fs::read_dir(&sub_out_dir)? {
                let p = e?.path();
                if p.extension().is_some_and(|x| x == "rs") {
                    std::fs::remove_file(&p)?;
                }
            }
        }
        if !sub_spec_dir.is_dir() {
            continue;
        }
        std::fs::create_dir_all(&sub_out_dir)?;
        let mut cpaths: Vec<PathBuf> = std::fs::read_dir(&sub_spec_dir)?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "json"))
            .collect();
        cpaths.sort();
        let mut cmodules = Vec::new();
        for p in &cpaths {
            let Some(spec) = load_spec(p)? else { continue };
            if !group.kinds.contains(&spec.kind.as_str()) {
                bail!("{}: record spec of type {:?}", p.display(), spec.kind);
            }
            let m = snake(&spec.name);
            let file = sub_out_dir.join(format!("{m}.rs"));
            std::fs::write(&file, gen_message_file(&spec)?)?;
            written.push(file);
            cmodules.push((m, spec.name.clone()));
        }
        let f = sub_out_dir.join("mod.rs");
        std::fs::write(&f, gen_record_mod(group, &cmodules))?;
        written.push(f);
        submodules.push(group.module);
    }

    let f = out_dir.join("mod.rs");
    std::fs::write(&f, gen_mod(&apis, &modules, &submodules))?;
    written.push(f);

    let status = std::process::Command::new("rustfmt")
        .arg("--edition")
        .arg("2024")
        .args(&written)
        .status()
        .context("running rustfmt")?;
    if !status.success() {
        bail!("rustfmt failed on generated code");
    }
    eprintln!(
        "arus-codegen: wrote {} files ({} APIs) to {}",
        written.len(),
        apis.len(),
        out_dir.display()
    );
    Ok(())
}
