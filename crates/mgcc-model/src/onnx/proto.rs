//! A protobuf wire-format writer: just enough to encode ONNX messages without generated code.
//!
//! A message is its fields in order, each a key `(field << 3) | wire type` as a varint
//! followed by the value: a varint (wire type 0), four little-endian bytes (5) or a varint
//! length and that many bytes (2: strings, bytes, nested messages). Repeated fields are the
//! same field written again.

/// Wire type of varint fields (`int32`, `int64`, enums).
const VARINT: u8 = 0;
/// Wire type of length-delimited fields (strings, bytes, messages).
const LEN: u8 = 2;
/// Wire type of four-byte fields (`float`).
const FIXED32: u8 = 5;

/// Appends `v` as a base-128 varint: seven bits per byte, least significant group first,
/// the high bit set on every byte but the last.
pub fn write_varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8 & 0x7f) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// A message being encoded; fields are appended in call order.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    buf: Vec<u8>,
}

impl Message {
    /// An empty message (zero bytes on the wire).
    pub fn new() -> Self {
        Self::default()
    }

    fn key(&mut self, field: u32, wire: u8) {
        write_varint(&mut self.buf, (u64::from(field) << 3) | u64::from(wire));
    }

    /// An `int64`/`int32`/enum field; negative values take ten bytes (two's complement).
    pub fn int(&mut self, field: u32, v: i64) -> &mut Self {
        self.key(field, VARINT);
        write_varint(&mut self.buf, v as u64);
        self
    }

    /// A `float` field.
    pub fn float(&mut self, field: u32, v: f32) -> &mut Self {
        self.key(field, FIXED32);
        self.buf.extend_from_slice(&v.to_le_bytes());
        self
    }

    /// A `bytes` field.
    pub fn bytes(&mut self, field: u32, v: &[u8]) -> &mut Self {
        self.key(field, LEN);
        write_varint(&mut self.buf, v.len() as u64);
        self.buf.extend_from_slice(v);
        self
    }

    /// A `string` field (UTF-8 bytes).
    pub fn string(&mut self, field: u32, v: &str) -> &mut Self {
        self.bytes(field, v.as_bytes())
    }

    /// A nested message field.
    pub fn message(&mut self, field: u32, m: &Message) -> &mut Self {
        self.bytes(field, &m.buf)
    }

    /// The encoded bytes.
    pub fn as_bytes(&self) -> &[u8] {
        &self.buf
    }

    /// The encoded bytes, consuming the message.
    pub fn into_bytes(self) -> Vec<u8> {
        self.buf
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn varint(v: u64) -> Vec<u8> {
        let mut out = Vec::new();
        write_varint(&mut out, v);
        out
    }

    #[test]
    fn varints_by_hand() {
        assert_eq!(varint(0), [0x00]);
        assert_eq!(varint(1), [0x01]);
        assert_eq!(varint(127), [0x7f]);
        assert_eq!(varint(128), [0x80, 0x01]);
        // 300 = 0b10_0101100: low group 0101100 | 0x80 = 0xAC, then 0b10 = 0x02.
        assert_eq!(varint(300), [0xac, 0x02]);
        assert_eq!(varint(16_384), [0x80, 0x80, 0x01]);
        // 64 bits need ten groups; the last holds the top bit alone.
        let mut max = vec![0xff; 9];
        max.push(0x01);
        assert_eq!(varint(u64::MAX), max);
    }

    /// The examples of the protobuf encoding guide, byte for byte.
    #[test]
    fn fields_by_hand() {
        // `message Test1 { int32 a = 1; }` with a = 150.
        let mut m = Message::new();
        m.int(1, 150);
        assert_eq!(m.as_bytes(), [0x08, 0x96, 0x01]);
        // `message Test2 { string b = 2; }` with b = "testing".
        let mut s = Message::new();
        s.string(2, "testing");
        assert_eq!(
            s.as_bytes(),
            [0x12, 0x07, b't', b'e', b's', b't', b'i', b'n', b'g']
        );
        // `message Test3 { Test1 c = 3; }`.
        let mut n = Message::new();
        n.message(3, &m);
        assert_eq!(n.as_bytes(), [0x1a, 0x03, 0x08, 0x96, 0x01]);
        // float 1.0 in field 2: key 2 << 3 | 5 = 0x15, then 0x3f800000 little-endian.
        let mut f = Message::new();
        f.float(2, 1.0);
        assert_eq!(f.as_bytes(), [0x15, 0x00, 0x00, 0x80, 0x3f]);
        // int64 −1 in field 1: ten bytes of two's complement.
        let mut neg = Message::new();
        neg.int(1, -1);
        let mut expect = vec![0x08];
        expect.extend([0xff; 9]);
        expect.push(0x01);
        assert_eq!(neg.as_bytes(), expect);
        // A field number past 15 takes a two-byte key: (20 << 3) | 0 = 160 = [0xa0, 0x01].
        let mut wide = Message::new();
        wide.int(20, 7);
        assert_eq!(wide.into_bytes(), [0xa0, 0x01, 0x07]);
        // An empty nested message is a key and a zero length.
        let mut e = Message::new();
        e.message(7, &Message::new());
        assert_eq!(e.as_bytes(), [0x3a, 0x00]);
    }
}
