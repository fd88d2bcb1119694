//! The `.index` file: a LevelDB-format sorted table (TensorFlow's `lib/io/table*`), spec §3.
//!
//! ```text
//! [data block][trailer] … [metaindex block][trailer] [index block][trailer] [footer, 48 bytes]
//! ```
//!
//! The reader validates everything it touches (magic, handles, block CRCs, restart arrays, key
//! order) and bounds all work by the file's size, so hostile input can neither panic nor make it
//! allocate or loop far beyond the input. The builder follows TensorFlow's `TableBuilder`
//! decision for decision, so its output is byte-identical.

use ferroflow_wire::{mask_crc, put_varint, read_varint32, read_varint64, WireResult};

/// Footer magic (`57 fb 80 8b 24 75 47 db` on disk).
const MAGIC: u64 = 0xdb47_7524_8b80_fb57;
/// Two block handles padded to 40 bytes, then the 8-byte magic.
const FOOTER_LEN: usize = 48;
const HANDLES_LEN: usize = 40;
/// Compression type byte + masked CRC after every block.
const TRAILER_LEN: u64 = 5;
/// TF's `block_size`: a data block is closed once its estimated size reaches this.
const BLOCK_SIZE: usize = 262_144;
/// TF's restart interval in data (and metaindex) blocks; the index block uses 1.
const DATA_RESTART_INTERVAL: usize = 16;
/// Decoded keys may be at most this many times the file's size. Prefix compression lets a
/// hostile block expand quadratically (every entry re-using a long previous key); a table
/// written with restart interval R expands at most R-fold, and TF writes R = 16.
const KEY_EXPANSION_LIMIT: usize = 64;

/// Where a block lies in the file (its size excludes the trailer).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct BlockHandle {
    offset: u64,
    size: u64,
}

impl BlockHandle {
    fn encode(self, out: &mut Vec<u8>) {
        put_varint(out, self.offset);
        put_varint(out, self.size);
    }

    fn decode(buf: &[u8], pos: &mut usize) -> WireResult<BlockHandle> {
        let offset = read_varint64(buf, pos)?;
        let size = read_varint64(buf, pos)?;
        Ok(BlockHandle { offset, size })
    }
}

/// Key-value pairs of a table, in (strictly increasing) key order.
pub(crate) struct Table<'a> {
    /// Every entry of every data block.
    pub(crate) entries: Vec<(Vec<u8>, &'a [u8])>,
    /// How many data blocks held them (tests check the block splitting with it).
    #[cfg_attr(not(test), allow(dead_code))]
    pub(crate) data_blocks: usize,
}

/// Parses and validates a whole table.
pub(crate) fn read_table(file: &[u8]) -> WireResult<Table<'_>> {
    let Some(blocks_len) = file.len().checked_sub(FOOTER_LEN) else {
        return Err(format!(
            "{} bytes is too short for a table (the footer alone is {FOOTER_LEN})",
            file.len()
        ));
    };
    let footer = &file[blocks_len..];
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&footer[HANDLES_LEN..]);
    if u64::from_le_bytes(magic) != MAGIC {
        return Err("bad table magic number (not a TensorFlow checkpoint index)".into());
    }
    let handles = &footer[..HANDLES_LEN];
    let mut pos = 0;
    let metaindex = BlockHandle::decode(handles, &mut pos).map_err(|e| format!("footer: {e}"))?;
    let index = BlockHandle::decode(handles, &mut pos).map_err(|e| format!("footer: {e}"))?;

    // Bounded relative to the file and absolutely, whatever prefix compression claims.
    let mut key_budget = file.len().saturating_mul(KEY_EXPANSION_LIMIT).clamp(1 << 16, 1 << 32);
    // TF never stores anything in the metaindex block, but it must still be well formed.
    read_block(file, blocks_len, metaindex, "metaindex block", &mut key_budget)?;
    let index_entries = read_block(file, blocks_len, index, "index block", &mut key_budget)?;

    let mut entries: Vec<(Vec<u8>, &[u8])> = Vec::new();
    let mut next_free = 0u64;
    let mut previous_separator: Option<&[u8]> = None;
    for (i, (separator, handle_bytes)) in index_entries.iter().enumerate() {
        let what = format!("data block {i}");
        let mut pos = 0;
        let handle = BlockHandle::decode(handle_bytes, &mut pos).map_err(|e| format!("{what} handle: {e}"))?;
        if pos != handle_bytes.len() {
            return Err(format!("{what} handle has {} trailing bytes", handle_bytes.len() - pos));
        }
        // Blocks in file order without overlap: each byte is checked and parsed at most once,
        // so an index pointing many times at one large block cannot multiply the work.
        if handle.offset < next_free {
            return Err(format!(
                "{what} at offset {} overlaps the block before it",
                handle.offset
            ));
        }
        next_free = handle.offset.saturating_add(handle.size).saturating_add(TRAILER_LEN);
        for (key, value) in read_block(file, blocks_len, handle, &what, &mut key_budget)? {
            // The index's binary search needs: previous separator < key <= own separator.
            let after_previous = previous_separator.is_none_or(|p| key.as_slice() > p);
            if !after_previous || key.as_slice() > separator.as_slice() {
                return Err(format!("{what}: key {:?} lies outside its index range", lossy(&key)));
            }
            if entries.last().is_some_and(|(last, _)| key <= *last) {
                return Err(format!("{what}: keys are not strictly increasing at {:?}", lossy(&key)));
            }
            entries.push((key, value));
        }
        previous_separator = Some(separator);
    }
    Ok(Table {
        entries,
        data_blocks: index_entries.len(),
    })
}

/// A key for error messages.
fn lossy(key: &[u8]) -> String {
    String::from_utf8_lossy(key).into_owned()
}

/// Checks the block at `handle` (bounds, trailer CRC, compression) and parses its entries.
fn read_block<'a>(
    file: &'a [u8],
    blocks_len: usize,
    handle: BlockHandle,
    what: &str,
    key_budget: &mut usize,
) -> WireResult<Vec<(Vec<u8>, &'a [u8])>> {
    let end = handle
        .offset
        .checked_add(handle.size)
        .and_then(|e| e.checked_add(TRAILER_LEN))
        .filter(|&e| e <= blocks_len as u64)
        .ok_or_else(|| {
            format!(
                "{what} (offset {}, size {}) runs past the {blocks_len} bytes before the footer",
                handle.offset, handle.size
            )
        })?;
    // In range of `blocks_len` now, so these conversions and slices cannot fail.
    let start = handle.offset as usize;
    let type_at = start + handle.size as usize;
    let contents = &file[start..type_at];
    let block_type = file[type_at];
    let mut stored = [0u8; 4];
    stored.copy_from_slice(&file[type_at + 1..end as usize]);
    let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[block_type]);
    if mask_crc(crc) != u32::from_le_bytes(stored) {
        return Err(format!("{what} at offset {}: block checksum mismatch", handle.offset));
    }
    if block_type != 0 {
        let name = if block_type == 1 { " (snappy)" } else { "" };
        return Err(format!(
            "{what}: compression type {block_type}{name} is not supported (TF checkpoints are uncompressed)"
        ));
    }
    parse_block(contents, key_budget).map_err(|e| format!("{what} at offset {}: {e}", handle.offset))
}

/// Splits a block's contents into its entries, validating the restart array and key order.
fn parse_block<'a>(contents: &'a [u8], key_budget: &mut usize) -> WireResult<Vec<(Vec<u8>, &'a [u8])>> {
    let Some(count_at) = contents.len().checked_sub(4) else {
        return Err(format!("{} bytes is too short for a block", contents.len()));
    };
    let num_restarts = read_u32(contents, count_at) as usize;
    if num_restarts == 0 || num_restarts > count_at / 4 {
        return Err(format!(
            "{num_restarts} restart points cannot fit in a {}-byte block",
            contents.len()
        ));
    }
    let data_len = count_at - 4 * num_restarts;
    let restart = |i: usize| read_u32(contents, data_len + 4 * i) as usize;
    let data = &contents[..data_len];

    let mut entries: Vec<(Vec<u8>, &[u8])> = Vec::new();
    let mut next_restart = 0;
    let mut pos = 0;
    while pos < data.len() {
        let start = pos;
        let shared = read_varint32(data, &mut pos)? as usize;
        let unshared = read_varint32(data, &mut pos)? as usize;
        let value_len = read_varint32(data, &mut pos)? as usize;
        let previous: &[u8] = entries.last().map_or(&[], |(k, _)| k.as_slice());
        if shared > previous.len() {
            return Err(format!(
                "entry at {start} shares {shared} bytes of a {}-byte previous key",
                previous.len()
            ));
        }
        // Restart points must be exactly the entries that share nothing with the previous
        // key; the first entry (offset 0) always is one.
        if next_restart < num_restarts && restart(next_restart) == start {
            if shared != 0 {
                return Err(format!("restart point at {start} has a shared key prefix"));
            }
            next_restart += 1;
        } else if start == 0 {
            return Err("the first restart point is not at offset 0".into());
        }
        let key_end = pos.checked_add(unshared).filter(|&e| e <= data.len());
        let value_end = key_end
            .and_then(|k| k.checked_add(value_len))
            .filter(|&e| e <= data.len());
        let (Some(key_end), Some(value_end)) = (key_end, value_end) else {
            return Err(format!("entry at {start} runs past the end of the block's entries"));
        };
        let key_len = shared + unshared;
        *key_budget = key_budget
            .checked_sub(key_len)
            .ok_or("keys expand to far more bytes than the file holds (hostile prefix compression)")?;
        let mut key = Vec::with_capacity(key_len);
        key.extend_from_slice(&previous[..shared]);
        key.extend_from_slice(&data[pos..key_end]);
        if !entries.is_empty() && key.as_slice() <= previous {
            return Err(format!("keys are not strictly increasing at entry {start}"));
        }
        entries.push((key, &data[key_end..value_end]));
        pos = value_end;
    }
    if !entries.is_empty() && next_restart != num_restarts {
        return Err(format!(
            "restart point {} (offset {}) is not at the start of an entry",
            next_restart,
            restart(next_restart)
        ));
    }
    Ok(entries)
}

/// The little-endian u32 at `at` (the caller guarantees `at + 4 <= buf.len()`).
fn read_u32(buf: &[u8], at: usize) -> u32 {
    let mut b = [0u8; 4];
    b.copy_from_slice(&buf[at..at + 4]);
    u32::from_le_bytes(b)
}

/// Builds one block: entries prefix-compressed against the previous key, a restart point every
/// `restart_interval` entries (LevelDB's `BlockBuilder`).
struct BlockBuilder {
    buf: Vec<u8>,
    restarts: Vec<u32>,
    /// Entries since the last restart point.
    counter: usize,
    restart_interval: usize,
    last_key: Vec<u8>,
}

impl BlockBuilder {
    fn new(restart_interval: usize) -> BlockBuilder {
        BlockBuilder {
            buf: Vec::new(),
            restarts: vec![0],
            counter: 0,
            restart_interval,
            last_key: Vec::new(),
        }
    }

    fn is_empty(&self) -> bool {
        self.buf.is_empty()
    }

    fn add(&mut self, key: &[u8], value: &[u8]) -> WireResult<()> {
        let too_long = || "a table key or value is 4 GiB or longer".to_string();
        let shared = if self.counter < self.restart_interval {
            self.last_key.iter().zip(key).take_while(|(a, b)| a == b).count()
        } else {
            self.restarts
                .push(u32::try_from(self.buf.len()).map_err(|_| too_long())?);
            self.counter = 0;
            0
        };
        for len in [shared, key.len() - shared, value.len()] {
            put_varint(&mut self.buf, u64::from(u32::try_from(len).map_err(|_| too_long())?));
        }
        self.buf.extend_from_slice(&key[shared..]);
        self.buf.extend_from_slice(value);
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.counter += 1;
        Ok(())
    }

    /// Entries + restart array + count, as TF estimates before deciding to close a block.
    fn size_estimate(&self) -> usize {
        self.buf.len() + 4 * self.restarts.len() + 4
    }

    /// The finished contents; the builder starts over empty.
    fn finish(&mut self) -> Vec<u8> {
        let mut out = std::mem::take(&mut self.buf);
        for r in &self.restarts {
            out.extend_from_slice(&r.to_le_bytes());
        }
        out.extend_from_slice(&(self.restarts.len() as u32).to_le_bytes());
        *self = BlockBuilder::new(self.restart_interval);
        out
    }
}

/// Builds a whole table from keys added in strictly increasing order (TF's `TableBuilder`).
pub(crate) struct TableBuilder {
    out: Vec<u8>,
    data_block: BlockBuilder,
    index_block: BlockBuilder,
    last_key: Vec<u8>,
    num_entries: usize,
    /// The index entry of the last flushed block waits for the next key, so that its separator
    /// can be shortened against it.
    pending: Option<BlockHandle>,
}

impl TableBuilder {
    pub(crate) fn new() -> TableBuilder {
        TableBuilder {
            out: Vec::new(),
            data_block: BlockBuilder::new(DATA_RESTART_INTERVAL),
            index_block: BlockBuilder::new(1),
            last_key: Vec::new(),
            num_entries: 0,
            pending: None,
        }
    }

    /// Adds one entry; `key` must sort after every key added before.
    pub(crate) fn add(&mut self, key: &[u8], value: &[u8]) -> WireResult<()> {
        if self.num_entries > 0 {
            if key <= self.last_key.as_slice() {
                return Err(format!("table keys out of order at {:?}", lossy(key)));
            }
            // An entry of twice the block size or more gets a block of its own.
            if key.len() + value.len() >= 2 * BLOCK_SIZE {
                self.flush();
            }
        }
        if let Some(handle) = self.pending.take() {
            find_shortest_separator(&mut self.last_key, key);
            self.add_index_entry(handle)?;
        }
        self.last_key.clear();
        self.last_key.extend_from_slice(key);
        self.num_entries += 1;
        self.data_block.add(key, value)?;
        if self.data_block.size_estimate() >= BLOCK_SIZE {
            self.flush();
        }
        Ok(())
    }

    fn add_index_entry(&mut self, handle: BlockHandle) -> WireResult<()> {
        let mut encoded = Vec::new();
        handle.encode(&mut encoded);
        self.index_block.add(&self.last_key, &encoded)
    }

    fn flush(&mut self) {
        if self.data_block.is_empty() {
            return;
        }
        let contents = self.data_block.finish();
        self.pending = Some(self.write_block(&contents));
    }

    /// Appends contents + trailer (type 0 = uncompressed, masked CRC over contents and type).
    fn write_block(&mut self, contents: &[u8]) -> BlockHandle {
        let handle = BlockHandle {
            offset: self.out.len() as u64,
            size: contents.len() as u64,
        };
        self.out.extend_from_slice(contents);
        self.out.push(0);
        let crc = crc32c::crc32c_append(crc32c::crc32c(contents), &[0]);
        self.out.extend_from_slice(&mask_crc(crc).to_le_bytes());
        handle
    }

    /// Writes the last data block, the empty metaindex block, the index block and the footer.
    pub(crate) fn finish(mut self) -> WireResult<Vec<u8>> {
        self.flush();
        let metaindex_contents = BlockBuilder::new(DATA_RESTART_INTERVAL).finish();
        let metaindex = self.write_block(&metaindex_contents);
        if let Some(handle) = self.pending.take() {
            find_short_successor(&mut self.last_key);
            self.add_index_entry(handle)?;
        }
        let index_contents = self.index_block.finish();
        let index = self.write_block(&index_contents);
        let footer_at = self.out.len();
        metaindex.encode(&mut self.out);
        index.encode(&mut self.out);
        self.out.resize(footer_at + HANDLES_LEN, 0);
        self.out.extend_from_slice(&MAGIC.to_le_bytes());
        Ok(self.out)
    }
}

/// Shortens `start` to a key in `[start, limit)` (LevelDB's bytewise comparator).
fn find_shortest_separator(start: &mut Vec<u8>, limit: &[u8]) {
    let diff = start.iter().zip(limit).take_while(|(a, b)| a == b).count();
    if diff >= start.len().min(limit.len()) {
        return; // one is a prefix of the other
    }
    let byte = start[diff];
    if byte < 0xff && byte + 1 < limit[diff] {
        start[diff] = byte + 1;
        start.truncate(diff + 1);
    }
}

/// Shortens `key` to a short key >= it: increment the first byte that is not 0xff.
fn find_short_successor(key: &mut Vec<u8>) {
    if let Some(i) = key.iter().position(|&b| b != 0xff) {
        key[i] += 1;
        key.truncate(i + 1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(entries: &[(Vec<u8>, Vec<u8>)]) -> Vec<u8> {
        let mut t = TableBuilder::new();
        for (k, v) in entries {
            t.add(k, v).unwrap();
        }
        t.finish().unwrap()
    }

    #[test]
    fn separators_follow_leveldb() {
        let mut s = b"abcd".to_vec();
        find_shortest_separator(&mut s, b"abzz");
        assert_eq!(s, b"abd");
        let mut s = b"abcd".to_vec();
        find_shortest_separator(&mut s, b"abde"); // c + 1 == d: cannot shorten
        assert_eq!(s, b"abcd");
        let mut s = b"ab".to_vec();
        find_shortest_separator(&mut s, b"abc");
        assert_eq!(s, b"ab");
        let mut k = b"model/dense_2".to_vec();
        find_short_successor(&mut k);
        assert_eq!(k, b"n");
        let mut k = vec![0xff, 0xff, 3];
        find_short_successor(&mut k);
        assert_eq!(k, [0xff, 0xff, 4]);
        let mut k = vec![0xff, 0xff];
        find_short_successor(&mut k);
        assert_eq!(k, [0xff, 0xff]);
    }

    #[test]
    fn empty_and_small_tables_round_trip() {
        let t = build(&[]);
        let parsed = read_table(&t).unwrap();
        assert!(parsed.entries.is_empty());
        assert_eq!(parsed.data_blocks, 0);

        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..100u32)
            .map(|i| (format!("key{i:04}").into_bytes(), i.to_le_bytes().to_vec()))
            .collect();
        let t = build(&entries);
        let parsed = read_table(&t).unwrap();
        assert_eq!(parsed.data_blocks, 1);
        let back: Vec<(Vec<u8>, Vec<u8>)> = parsed.entries.iter().map(|(k, v)| (k.clone(), v.to_vec())).collect();
        assert_eq!(back, entries);
    }

    #[test]
    fn large_tables_split_into_blocks() {
        // ~2500 entries of ~250 bytes: TF writes 3 data blocks (spec §3.1).
        let entries: Vec<(Vec<u8>, Vec<u8>)> = (0..2500u32)
            .map(|i| (format!("{i:06}/{}", "k".repeat(200)).into_bytes(), vec![i as u8; 40]))
            .collect();
        let t = build(&entries);
        let parsed = read_table(&t).unwrap();
        assert_eq!(parsed.data_blocks, 3);
        assert_eq!(parsed.entries.len(), entries.len());
        assert!(parsed
            .entries
            .iter()
            .zip(&entries)
            .all(|((k, v), (ek, ev))| k == ek && v == ev));

        // A huge entry is put in a block of its own.
        let big = vec![
            (b"a".to_vec(), vec![1]),
            (b"b".to_vec(), vec![7; 2 * BLOCK_SIZE]),
            (b"c".to_vec(), vec![2]),
        ];
        let parsed_big = build(&big);
        let parsed = read_table(&parsed_big).unwrap();
        assert_eq!(parsed.data_blocks, 3);
        assert_eq!(parsed.entries.len(), 3);
    }

    #[test]
    fn out_of_order_keys_are_refused_by_the_builder() {
        let mut t = TableBuilder::new();
        t.add(b"b", b"").unwrap();
        assert!(t.add(b"a", b"").is_err());
        assert!(t.add(b"b", b"").is_err());
    }

    #[test]
    fn hostile_prefix_compression_is_bounded() {
        // One restart point, then entries that each copy the whole previous key and add a byte:
        // 3 bytes of input per entry would decode to ever longer keys.
        let mut data = Vec::new();
        let first = vec![b'a'; 60_000];
        put_varint(&mut data, 0);
        put_varint(&mut data, first.len() as u64);
        put_varint(&mut data, 0);
        data.extend_from_slice(&first);
        for len in first.len()..first.len() + 40_000 {
            for v in [len as u64, 1, 0] {
                put_varint(&mut data, v);
            }
            data.push(b'b');
        }
        data.extend_from_slice(&0u32.to_le_bytes());
        data.extend_from_slice(&1u32.to_le_bytes());
        let mut budget = data.len() * KEY_EXPANSION_LIMIT;
        let e = parse_block(&data, &mut budget).unwrap_err();
        assert!(e.contains("expand"), "{e}");
    }

    #[test]
    fn overlapping_data_blocks_are_refused() {
        // Two index entries pointing at the same data block.
        let mut t = TableBuilder::new();
        t.add(b"a", b"1").unwrap();
        t.flush();
        let handle = t.pending.take().unwrap();
        t.last_key = b"b".to_vec();
        t.add_index_entry(handle).unwrap();
        t.last_key = b"c".to_vec();
        t.add_index_entry(handle).unwrap();
        let bytes = t.finish().unwrap();
        let e = read_table(&bytes).err().unwrap();
        assert!(e.contains("overlaps"), "{e}");
    }
}
