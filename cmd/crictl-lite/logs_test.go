package main

import (
	"bytes"
	"strings"
	"testing"
	"time"
)

func TestParseLogLine(t *testing.T) {
	ts := "2024-05-01T10:00:00.123456789Z"
	tests := []struct {
		in      string
		stream  string
		partial bool
		content string
		err     bool
	}{
		{in: ts + " stdout F hello world", stream: "stdout", content: "hello world"},
		{in: ts + " stderr P part", stream: "stderr", partial: true, content: "part"},
		{in: ts + " stdout F ", stream: "stdout", content: ""},
		{in: ts + " stdout F", stream: "stdout", content: ""},
		{in: ts + " stdout F  two  spaces ", stream: "stdout", content: " two  spaces "},
		{in: "garbage", err: true},
		{in: "notatime stdout F x", err: true},
		{in: ts + " stdin F x", err: true},
		{in: ts + " stdout X x", err: true},
	}
	for _, tt := range tests {
		l, err := parseLogLine([]byte(tt.in))
		if (err != nil) != tt.err {
			t.Errorf("parseLogLine(%q) error = %v, want error %t", tt.in, err, tt.err)
			continue
		}
		if err == nil && (l.stream != tt.stream || l.partial != tt.partial || string(l.content) != tt.content) {
			t.Errorf("parseLogLine(%q) = %s %t %q", tt.in, l.stream, l.partial, l.content)
		}
	}
}

func TestReadLog(t *testing.T) {
	now := time.Date(2024, 5, 1, 10, 0, 10, 0, time.UTC)
	file := strings.Join([]string{
		"2024-05-01T10:00:00Z stdout F one",
		"2024-05-01T10:00:01Z stdout P tw",
		"2024-05-01T10:00:02Z stderr F err",
		"2024-05-01T10:00:03Z stdout F o",
		"torn line",
		"2024-05-01T10:00:09Z stdout F three",
		"2024-05-01T10:00:09Z stdout F incomplete", // no newline: not consumed
	}, "\n")
	tests := []struct {
		name  string
		o     logOptions
		want  string
		bytes int
	}{
		{"all, partials joined", logOptions{tail: -1}, "one|err|two|three", len(file) - len("2024-05-01T10:00:09Z stdout F incomplete")},
		{"tail", logOptions{tail: 2}, "two|three", -1},
		{"tail zero", logOptions{tail: 0}, "", -1},
		{"since", logOptions{tail: -1, since: 5 * time.Second}, "three", -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.now = now
			lines, off, err := readLog(strings.NewReader(file), tt.o)
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, l := range lines {
				got = append(got, string(l.content))
			}
			if strings.Join(got, "|") != tt.want {
				t.Errorf("lines = %q, want %q", strings.Join(got, "|"), tt.want)
			}
			if tt.bytes >= 0 && off != int64(tt.bytes) {
				t.Errorf("consumed %d bytes, want %d", off, tt.bytes)
			}
		})
	}
}

func TestLogWriterStreams(t *testing.T) {
	var out, errOut bytes.Buffer
	w := logWriter{stdout: &out, stderr: &errOut, timestamps: true}
	ts := time.Date(2024, 5, 1, 10, 0, 0, 5, time.UTC)
	w.write(logLine{time: ts, stream: "stdout", content: []byte("a")})
	w.write(logLine{time: ts, stream: "stderr", content: []byte("b")})
	if out.String() != "2024-05-01T10:00:00.000000005Z a\n" || errOut.String() != "2024-05-01T10:00:00.000000005Z b\n" {
		t.Errorf("stdout %q, stderr %q", out.String(), errOut.String())
	}
}
