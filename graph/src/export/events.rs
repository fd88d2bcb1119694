//! TensorBoard event files without a protobuf library: TFRecord framing with masked CRC32C,
//! and the few protobuf messages needed (Event, Summary, GraphDef), written in field-number
//! order so the bytes are canonical. See `spec/tensorboard-events.md` in the repository.

use crate::ir::{Graph, NodeKind};
use ferroflow_tensor_core::{DType, Data, Op};
use ferroflow_wire as wire;
use ferroflow_wire::masked_crc32c;

/// One TFRecord: length, its masked CRC, the payload, its masked CRC.
pub fn frame_record(payload: &[u8]) -> Vec<u8> {
    let len = (payload.len() as u64).to_le_bytes();
    let mut out = Vec::with_capacity(payload.len() + 16);
    out.extend_from_slice(&len);
    out.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    out.extend_from_slice(payload);
    out.extend_from_slice(&masked_crc32c(payload).to_le_bytes());
    out
}

/// Splits a TFRecord file into payloads, checking both CRCs of every record and every
/// length against the bytes left. The error names the offset and what is wrong.
pub fn read_records(bytes: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut out = Vec::new();
    let mut pos = 0usize;
    while pos < bytes.len() {
        let header = bytes
            .get(pos..pos + 12)
            .ok_or_else(|| format!("truncated record header at offset {pos}"))?;
        let len_bytes: [u8; 8] = header[..8].try_into().map_err(|_| "header".to_string())?;
        let crc = u32::from_le_bytes(header[8..12].try_into().map_err(|_| "header".to_string())?);
        if masked_crc32c(&len_bytes) != crc {
            return Err(format!("length CRC mismatch at offset {pos}"));
        }
        let len = u64::from_le_bytes(len_bytes);
        let rest = (bytes.len() - pos - 12) as u64;
        if len.checked_add(4).is_none_or(|need| need > rest) {
            return Err(format!("record at offset {pos} claims {len} bytes, only {rest} remain"));
        }
        let len = len as usize;
        let payload = &bytes[pos + 12..pos + 12 + len];
        let crc = u32::from_le_bytes(
            bytes[pos + 12 + len..pos + 16 + len]
                .try_into()
                .map_err(|_| "crc".to_string())?,
        );
        if masked_crc32c(payload) != crc {
            return Err(format!("payload CRC mismatch in record at offset {pos}"));
        }
        out.push(payload.to_vec());
        pos += 16 + len;
    }
    Ok(out)
}

/// A protobuf message being written.
#[derive(Default)]
pub struct Proto(pub Vec<u8>);

impl Proto {
    /// A varint field (int32/int64/bool/enum; negatives take ten bytes).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        wire::put_varint_field(&mut self.0, field, v as u64);
        self
    }

    /// A double field.
    pub fn double(&mut self, field: u32, v: f64) -> &mut Self {
        wire::put_fixed64_field(&mut self.0, field, v.to_bits());
        self
    }

    /// A float field.
    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        wire::put_fixed32_field(&mut self.0, field, v.to_bits());
        self
    }

    /// A bytes/string/embedded-message field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        wire::put_bytes_field(&mut self.0, field, v);
        self
    }

    /// An embedded message.
    pub fn message(&mut self, field: u32, m: &Proto) -> &mut Self {
        self.bytes(field, &m.0)
    }
}

/// TensorFlow's DataType enum value.
pub fn tf_dtype(d: DType) -> i64 {
    match d {
        DType::F32 => 1,
        DType::F64 => 2,
        DType::I32 => 3,
        DType::I64 => 9,
        DType::Bool => 10,
    }
}

fn shape_proto(dims: &[usize]) -> Proto {
    let mut s = Proto::default();
    for &d in dims {
        s.message(2, Proto::default().int(1, d as i64));
    }
    s
}

/// A TensorProto with raw little-endian content.
pub fn tensor_proto(d: &Data) -> Proto {
    let mut content = Vec::new();
    match d {
        Data::F32(a) => a.iter().for_each(|v| content.extend_from_slice(&v.to_le_bytes())),
        Data::F64(a) => a.iter().for_each(|v| content.extend_from_slice(&v.to_le_bytes())),
        Data::I32(a) => a.iter().for_each(|v| content.extend_from_slice(&v.to_le_bytes())),
        Data::I64(a) => a.iter().for_each(|v| content.extend_from_slice(&v.to_le_bytes())),
        Data::Bool(a) => a.iter().for_each(|&v| content.push(v as u8)),
    }
    let mut t = Proto::default();
    t.int(1, tf_dtype(d.dtype()))
        .message(2, &shape_proto(d.dims()))
        .bytes(4, &content);
    t
}

fn attr(node: &mut Proto, key: &str, value: &Proto) {
    let mut entry = Proto::default();
    entry.bytes(1, key.as_bytes()).message(2, value);
    node.message(5, &entry);
}

fn attr_type(node: &mut Proto, key: &str, d: DType) {
    attr(node, key, Proto::default().int(6, tf_dtype(d)));
}

/// The GraphDef of a graph: names, op types, inputs, dtypes, Const values, transpose flags
/// and `_output_shapes` (which the Graphs dashboard shows on edges).
pub fn graph_def(g: &Graph) -> Vec<u8> {
    let mut gd = Proto::default();
    for n in &g.nodes {
        let mut node = Proto::default();
        node.bytes(1, n.name.as_bytes()).bytes(2, n.op_type().as_bytes());
        for v in &n.inputs {
            let src = &g.nodes[v.node].name;
            let name = if v.output == 0 {
                src.clone()
            } else {
                format!("{src}:{}", v.output)
            };
            node.bytes(3, name.as_bytes());
        }
        let dtype = n.outputs.first().map(|s| s.dtype).unwrap_or(DType::F32);
        match &n.kind {
            NodeKind::Placeholder { .. } => {
                attr_type(&mut node, "dtype", dtype);
                if let Some(s) = n.outputs.first() {
                    attr(
                        &mut node,
                        "shape",
                        Proto::default().message(7, &shape_proto(s.shape.dims())),
                    );
                }
            }
            NodeKind::Const(d) => {
                attr_type(&mut node, "dtype", dtype);
                attr(&mut node, "value", Proto::default().message(8, &tensor_proto(d)));
            }
            NodeKind::Op(Op::MatMul {
                transpose_a,
                transpose_b,
            }) => {
                attr_type(&mut node, "T", dtype);
                attr(&mut node, "transpose_a", Proto::default().int(5, *transpose_a as i64));
                attr(&mut node, "transpose_b", Proto::default().int(5, *transpose_b as i64));
            }
            _ => attr_type(&mut node, "T", dtype),
        }
        let mut list = Proto::default();
        for s in &n.outputs {
            list.message(7, &shape_proto(s.shape.dims()));
        }
        attr(&mut node, "_output_shapes", Proto::default().message(1, &list));
        gd.message(1, &node);
    }
    gd.0
}

/// `Event{wall_time, file_version: "brain.Event:2"}`.
pub fn file_version_event(wall_time: f64) -> Vec<u8> {
    let mut e = Proto::default();
    e.double(1, wall_time).bytes(3, b"brain.Event:2");
    e.0
}

/// `Event{wall_time, graph_def}`.
pub fn graph_event(wall_time: f64, g: &Graph) -> Vec<u8> {
    let mut e = Proto::default();
    e.double(1, wall_time).bytes(4, &graph_def(g));
    e.0
}

/// `Event{wall_time, step, summary{value{tag, tensor: f32 scalar, metadata: scalars}}}`, the
/// TF2 encoding of `tf.summary.scalar`.
pub fn scalar_event(wall_time: f64, step: i64, tag: &str, value: f32) -> Vec<u8> {
    let mut tensor = Proto::default();
    tensor
        .int(1, 1)
        .message(2, &Proto::default())
        .bytes(4, &value.to_le_bytes());
    let mut plugin = Proto::default();
    plugin.bytes(1, b"scalars");
    let mut meta = Proto::default();
    meta.message(1, &plugin);
    let mut v = Proto::default();
    v.bytes(1, tag.as_bytes()).message(8, &tensor).message(9, &meta);
    let mut summary = Proto::default();
    summary.message(1, &v);
    let mut e = Proto::default();
    e.double(1, wall_time);
    if step != 0 {
        e.int(2, step);
    }
    e.message(5, &summary);
    e.0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hex(s: &str) -> Vec<u8> {
        let s: String = s.chars().filter(|c| c.is_ascii_hexdigit()).collect();
        (0..s.len())
            .step_by(2)
            .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
            .collect()
    }

    #[test]
    fn events_match_the_golden_bytes() {
        let e = file_version_event(1_700_000_000.0);
        let mut want = hex("09 00000040fc54d941 1a 0d");
        want.extend_from_slice(b"brain.Event:2");
        assert_eq!(e, want);
        let rec = frame_record(&e);
        assert_eq!(&rec[..12], &hex("1800000000000000 a37f4b22")[..]);
        assert_eq!(&rec[rec.len() - 4..], &hex("eced8f9d")[..]);

        let s = scalar_event(1_700_000_001.5, 1, "loss", 0.5);
        let mut want =
            hex("0900006040fc54d941 1001 2a21 0a1f 0a046c6f7373 420a 0801 1200 2204 0000003f 4a0b 0a09 0a07");
        want.extend_from_slice(b"scalars");
        assert_eq!(s, want);
        let rec = frame_record(&s);
        assert_eq!(&rec[..12], &hex("2e00000000000000 c5cb57fa")[..]);
        assert_eq!(&rec[rec.len() - 4..], &hex("ad0a5d0b")[..]);
    }

    #[test]
    fn reader_checks_framing() {
        let mut file = frame_record(b"hello");
        file.extend(frame_record(b""));
        assert_eq!(read_records(&file).unwrap(), vec![b"hello".to_vec(), Vec::new()]);
        let mut bad = file.clone();
        bad[13] ^= 1;
        assert!(read_records(&bad).unwrap_err().contains("payload CRC"));
        assert!(read_records(&file[..file.len() - 3]).is_err());
        let mut huge = file.clone();
        huge[..8].copy_from_slice(&u64::MAX.to_le_bytes());
        assert!(read_records(&huge).is_err());
    }
}
