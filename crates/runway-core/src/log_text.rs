//! Where each part of a job's log came from: the attempt that wrote it, when, and whether it was
//! the command's stdout, its stderr, or a note of runway's own. The log itself stays plain text
//! (what `GET /v1/jobs/{id}/log` and a download give); these marks travel beside it, so a reader
//! can split the log by attempt, tell stderr apart and show when each line was written.

use crate::clock::Timestamp;

/// Where a line of log came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LogStream {
    Stdout,
    Stderr,
    /// runway's own notes in the log: a spawn, a refused line, a cut.
    Runway,
}

impl LogStream {
    pub fn as_str(self) -> &'static str {
        match self {
            LogStream::Stdout => "stdout",
            LogStream::Stderr => "stderr",
            LogStream::Runway => "runway",
        }
    }

    fn code(self) -> char {
        match self {
            LogStream::Stdout => 'o',
            LogStream::Stderr => 'e',
            LogStream::Runway => 'r',
        }
    }

    fn from_code(code: char) -> Option<LogStream> {
        match code {
            'o' => Some(LogStream::Stdout),
            'e' => Some(LogStream::Stderr),
            'r' => Some(LogStream::Runway),
            _ => None,
        }
    }
}

/// Log text to append, with the byte offsets (in `text`) where its stream changes; the first
/// change is at 0.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogText {
    pub text: String,
    pub streams: Vec<(u64, LogStream)>,
}

impl LogText {
    /// Text of one stream.
    pub fn new(text: impl Into<String>, stream: LogStream) -> LogText {
        let text = text.into();
        let streams = if text.is_empty() {
            Vec::new()
        } else {
            vec![(0, stream)]
        };
        LogText { text, streams }
    }

    /// Appends `text` of `stream`, marking where the stream changes.
    pub fn push(&mut self, text: &str, stream: LogStream) {
        if text.is_empty() {
            return;
        }
        if self.streams.last().map(|&(_, last)| last) != Some(stream) {
            self.streams.push((self.text.len() as u64, stream));
        }
        self.text.push_str(text);
    }

    pub fn append(&mut self, other: LogText) {
        let base = self.text.len() as u64;
        for (offset, stream) in other.streams {
            if self.streams.last().map(|&(_, last)| last) != Some(stream) {
                self.streams.push((base + offset, stream));
            }
        }
        self.text.push_str(&other.text);
    }

    pub fn is_empty(&self) -> bool {
        self.text.is_empty()
    }

    pub fn len(&self) -> usize {
        self.text.len()
    }

    /// What a log with `room` bytes left keeps: all of it, or as much as fits (cut at a
    /// character boundary, ended with a newline) followed by `truncated_note`, runway's own.
    pub fn within(self, room: u64, truncated_note: &str) -> LogText {
        if self.text.len() as u64 <= room {
            return self;
        }
        let mut cut = room as usize;
        while !self.text.is_char_boundary(cut) {
            cut -= 1;
        }
        let mut kept = LogText {
            streams: self
                .streams
                .into_iter()
                .filter(|&(offset, _)| offset < cut as u64)
                .collect(),
            text: self.text[..cut].to_string(),
        };
        if !kept.text.is_empty() && !kept.text.ends_with('\n') {
            kept.text.push('\n');
        }
        kept.push(truncated_note, LogStream::Runway);
        kept
    }

    /// Its marks once appended at `offset` of the log by `attempt` at `at`.
    pub fn marks(&self, offset: u64, attempt: u32, at: Timestamp) -> Vec<LogMark> {
        self.streams
            .iter()
            .map(|&(relative, stream)| LogMark {
                offset: offset + relative,
                attempt,
                stream,
                at: Some(at),
            })
            .collect()
    }

    /// The stream changes as stored beside the text: `0o,120e,300r`.
    pub fn encode_streams(&self) -> String {
        let parts: Vec<String> = self
            .streams
            .iter()
            .map(|(offset, stream)| format!("{offset}{}", stream.code()))
            .collect();
        parts.join(",")
    }
}

impl From<&str> for LogText {
    fn from(text: &str) -> LogText {
        LogText::new(text, LogStream::Stdout)
    }
}

/// Stream changes as [`LogText::encode_streams`] wrote them; parts that do not read are left
/// out (the text then counts as the stream before it).
pub fn decode_streams(encoded: &str) -> Vec<(u64, LogStream)> {
    encoded
        .split(',')
        .filter_map(|part| {
            let code = part.chars().last()?;
            let offset = part[..part.len() - code.len_utf8()].parse().ok()?;
            Some((offset, LogStream::from_code(code)?))
        })
        .collect()
}

/// Where a part of a log begins: from `offset` up to the next mark, its text came from
/// `stream` during `attempt` and was stored at `at` (unknown for logs older than marks).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LogMark {
    pub offset: u64,
    pub attempt: u32,
    pub stream: LogStream,
    pub at: Option<Timestamp>,
}

/// What a store keeps beside one appended chunk of log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkMarks {
    /// The chunk's offset in the whole log.
    pub offset: u64,
    pub attempt: u32,
    pub at: Option<Timestamp>,
    /// [`LogText::encode_streams`] of the chunk.
    pub streams: String,
}

impl ChunkMarks {
    /// The marks of this chunk that describe bytes `from..to` of the log: the one in force at
    /// `from` (moved to it) and every later one before `to`.
    pub fn marks_within(&self, from: u64, to: u64) -> Vec<LogMark> {
        let mut streams = decode_streams(&self.streams);
        if streams.first().is_none_or(|&(offset, _)| offset > 0) {
            streams.insert(0, (0, LogStream::Stdout));
        }
        let mut marks: Vec<LogMark> = Vec::new();
        for (relative, stream) in streams {
            let offset = self.offset + relative;
            let mark = LogMark {
                offset: offset.max(from),
                attempt: self.attempt,
                stream,
                at: self.at,
            };
            if offset <= from {
                marks.clear();
                marks.push(mark);
            } else if offset < to {
                marks.push(mark);
            }
        }
        marks
    }
}

#[cfg(test)]
mod tests {
    use chrono::{TimeZone, Utc};

    use super::*;

    #[test]
    fn a_mark_is_added_only_where_the_stream_changes() {
        let mut text = LogText::default();
        text.push("a\n", LogStream::Stdout);
        text.push("b\n", LogStream::Stdout);
        text.push("oops\n", LogStream::Stderr);
        text.push("c\n", LogStream::Stdout);
        assert_eq!(
            text.streams,
            vec![
                (0, LogStream::Stdout),
                (4, LogStream::Stderr),
                (9, LogStream::Stdout)
            ]
        );
        assert_eq!(text.encode_streams(), "0o,4e,9o");
        assert_eq!(decode_streams(&text.encode_streams()), text.streams);
    }

    #[test]
    fn appending_joins_the_marks_at_their_new_offsets() {
        let mut text = LogText::new("a\n", LogStream::Stdout);
        let mut more = LogText::new("b\n", LogStream::Stdout);
        more.push("e\n", LogStream::Stderr);
        text.append(more);
        assert_eq!(text.text, "a\nb\ne\n");
        assert_eq!(
            text.streams,
            vec![(0, LogStream::Stdout), (4, LogStream::Stderr)]
        );
    }

    #[test]
    fn appended_text_marks_its_streams_at_their_place_in_the_log() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let mut text = LogText::new("a\n", LogStream::Stdout);
        text.push("e\n", LogStream::Stderr);
        let marks: Vec<(u64, LogStream)> = text
            .marks(100, 2, at)
            .iter()
            .map(|mark| (mark.offset, mark.stream))
            .collect();
        assert_eq!(
            marks,
            vec![(100, LogStream::Stdout), (102, LogStream::Stderr)]
        );
    }

    #[test]
    fn a_cut_keeps_the_marks_before_it_and_notes_itself_as_runway() {
        let mut text = LogText::new("hello\n", LogStream::Stdout);
        text.push("world\n", LogStream::Stderr);
        let kept = text.within(4, "[cut]\n");
        assert_eq!(kept.text, "hell\n[cut]\n");
        assert_eq!(
            kept.streams,
            vec![(0, LogStream::Stdout), (5, LogStream::Runway)]
        );
    }

    #[test]
    fn a_chunk_gives_the_marks_of_the_range_read() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let chunk = ChunkMarks {
            offset: 100,
            attempt: 2,
            at: Some(at),
            streams: "0o,10e,20o".into(),
        };
        let streams = |marks: Vec<LogMark>| -> Vec<(u64, LogStream)> {
            marks
                .iter()
                .map(|mark| (mark.offset, mark.stream))
                .collect()
        };
        assert_eq!(
            streams(chunk.marks_within(105, 125)),
            vec![
                (105, LogStream::Stdout),
                (110, LogStream::Stderr),
                (120, LogStream::Stdout)
            ]
        );
        assert_eq!(
            streams(chunk.marks_within(112, 118)),
            vec![(112, LogStream::Stderr)]
        );
        assert!(
            chunk
                .marks_within(105, 125)
                .iter()
                .all(|mark| mark.attempt == 2)
        );
    }

    #[test]
    fn a_chunk_stored_without_marks_reads_as_stdout() {
        let at = Utc.timestamp_opt(1_700_000_000, 0).unwrap();
        let chunk = ChunkMarks {
            offset: 0,
            attempt: 1,
            at: Some(at),
            streams: String::new(),
        };
        let marks = chunk.marks_within(0, 10);
        assert_eq!(marks.len(), 1);
        assert_eq!((marks[0].offset, marks[0].stream), (0, LogStream::Stdout));
    }
}
