// Package yamlsafe bounds the cost of decoding a small YAML settings document
// (node.yaml, the GenerateConfig) before a YAML library sees it.
//
// The YAML decoders provision uses (sigs.k8s.io/yaml over go-yaml v2) are
// super-linear in two ways: alias expansion ("billion laughs", bounded by
// go-yaml only at ~400,000 decoded nodes) and nesting depth (every token costs
// time proportional to the depth, up to go-yaml's own limit of 10,000 levels).
// Check refuses, in one linear pass over the bytes, a document larger than
// MaxBytes, nested deeper than MaxDepth, or using an anchor or alias; what it
// lets through decodes in time linear in its size.
package yamlsafe

import (
	"fmt"
	"io"
	"os"
)

const (
	// MaxBytes is the largest document accepted: 1 MiB. A node.yaml is about
	// 1 KiB and a GenerateConfig with an inline CA and cloud-config a few KiB.
	MaxBytes = 1 << 20
	// MaxDepth is the deepest nesting of mappings, sequences and flow
	// collections accepted. provision's documents nest at most 5 levels.
	MaxDepth = 64
)

// ReadFile reads the file at path, refusing one larger than MaxBytes without
// reading more than MaxBytes+1 bytes of it.
func ReadFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxBytes+1))
	if err != nil {
		return nil, err
	}
	if len(data) > MaxBytes {
		return nil, fmt.Errorf("%s: %w", path, checkSize(len(data)))
	}
	return data, nil
}

func checkSize(n int) error {
	if n > MaxBytes {
		return fmt.Errorf("document is larger than the limit of %d bytes (1 MiB)", MaxBytes)
	}
	return nil
}

// Check reports whether data is within the limits: at most MaxBytes, nested at
// most MaxDepth levels, no anchor (&name) and no alias (*name). Its errors name
// the line and the limit. It does not validate YAML syntax (the decoder does);
// where its reading of the syntax is unsure it errs on the side of counting a
// level or an alias, never of missing one.
func Check(data []byte) error {
	if err := checkSize(len(data)); err != nil {
		return err
	}
	s := scanner{}
	return s.run(data)
}

type mode int

const (
	modeNormal    mode = iota
	modeDouble         // inside a double-quoted scalar
	modeSingle         // inside a single-quoted scalar
	modeBlock          // inside a literal (|) or folded (>) block scalar's content
	modePlainCont      // a block-context plain scalar may continue on the next lines
)

type scanner struct {
	line      int   // 1-based line number, for errors
	mode      mode  // state carried from one line to the next
	threshold int   // modeBlock/modePlainCont: lines indented more than this belong to the scalar
	flow      int   // depth of [ and { collections
	stack     []int // indentation columns of the open block collections
	nodeStart bool  // in flow context: the next non-blank character starts a node

	// per line (block context)
	dashes   int // leading "- " / "? " indicators on this line
	lastDash int // column of the last of them, -1 if none
	keyCol   int // column of the key before a ": " on this line, -1 if none
	tokCol   int // column where the current scalar token started
}

func isBlank(c byte) bool { return c == ' ' || c == '\t' || c == '\r' }

func (s *scanner) run(data []byte) error {
	for start := 0; start <= len(data); {
		end := start
		for end < len(data) && data[end] != '\n' {
			end++
		}
		s.line++
		if err := s.scanLine(data[start:end]); err != nil {
			return fmt.Errorf("line %d: %w", s.line, err)
		}
		start = end + 1
	}
	return nil
}

func indentOf(line []byte) (int, bool) {
	i := 0
	for i < len(line) && isBlank(line[i]) {
		i++
	}
	return i, i == len(line)
}

func (s *scanner) depth() int { return len(s.stack) + s.dashes + s.flow }

func (s *scanner) checkDepth() error {
	if s.depth() > MaxDepth {
		return fmt.Errorf("nesting deeper than the limit of %d levels", MaxDepth)
	}
	return nil
}

func (s *scanner) scanLine(line []byte) error {
	i := 0
	switch s.mode {
	case modeDouble, modeSingle:
		j, closed := s.skipQuoted(line, 0)
		if !closed {
			return nil
		}
		s.mode = modeNormal
		s.nodeStart = false
		return s.scan(line, j)
	case modeBlock, modePlainCont:
		ind, blank := indentOf(line)
		if blank {
			return nil
		}
		if ind > s.threshold && !(s.mode == modePlainCont && line[ind] == '#') {
			return nil // content of the scalar
		}
		s.mode = modeNormal
	}
	if s.flow > 0 {
		// A line break inside a flow collection is white space.
		return s.scan(line, 0)
	}
	ind, blank := indentOf(line)
	if blank || line[ind] == '#' {
		return nil
	}
	if ind == 0 && len(line) >= 3 && (string(line[:3]) == "---" || string(line[:3]) == "...") && (len(line) == 3 || isBlank(line[3])) {
		s.stack = s.stack[:0] // a new document (or the end of one)
		i = 3
	} else if ind == 0 && line[0] == '%' {
		return nil // directive
	} else {
		for len(s.stack) > 0 && s.stack[len(s.stack)-1] > ind {
			s.stack = s.stack[:len(s.stack)-1]
		}
		if len(s.stack) == 0 || s.stack[len(s.stack)-1] < ind {
			s.stack = append(s.stack, ind)
		}
		i = ind
	}
	s.dashes, s.lastDash, s.keyCol = 0, -1, -1
	s.nodeStart = true
	if err := s.checkDepth(); err != nil {
		return err
	}
	return s.scan(line, i)
}

// skipQuoted scans line from i for the end of the current quoted scalar and
// returns the index after it and whether it ended on this line.
func (s *scanner) skipQuoted(line []byte, i int) (int, bool) {
	for ; i < len(line); i++ {
		c := line[i]
		if s.mode == modeDouble {
			if c == '\\' {
				i++
				continue
			}
			if c == '"' {
				return i + 1, true
			}
			continue
		}
		if c == '\'' {
			if i+1 < len(line) && line[i+1] == '\'' {
				i++
				continue
			}
			return i + 1, true
		}
	}
	return i, false
}

// scan reads the tokens of line from i on. In block context s.nodeStart is
// true at the start of the line's content.
func (s *scanner) scan(line []byte, i int) error {
	inPlain := false // a block-context plain scalar is open
	for i < len(line) {
		c := line[i]
		if isBlank(c) {
			i++
			continue
		}
		if c == '#' && (i == 0 || isBlank(line[i-1])) {
			break // comment
		}
		next := byte(' ')
		if i+1 < len(line) {
			next = line[i+1]
		}
		if s.nodeStart {
			switch {
			case (c == '-' || c == '?') && isBlank(next) && s.flow == 0:
				s.dashes++
				s.lastDash = i
				if err := s.checkDepth(); err != nil {
					return err
				}
				i += 2
				continue
			case c == '?' && isBlank(next):
				i += 2
				continue
			case c == '&':
				return fmt.Errorf("YAML anchors (&name) are not allowed; quote a value that starts with &")
			case c == '*':
				return fmt.Errorf("YAML aliases (*name) are not allowed; quote a value that starts with *")
			case c == '!':
				for i < len(line) && !isBlank(line[i]) {
					i++ // a tag: the node follows
				}
				continue
			case c == '[' || c == '{':
				s.flow++
				if err := s.checkDepth(); err != nil {
					return err
				}
				i++
				continue
			case c == '"' || c == '\'':
				s.tokCol = i
				if c == '"' {
					s.mode = modeDouble
				} else {
					s.mode = modeSingle
				}
				j, closed := s.skipQuoted(line, i+1)
				if !closed {
					return nil // continues on the next line
				}
				s.mode = modeNormal
				s.nodeStart = false
				i = j
				continue
			case (c == '|' || c == '>') && s.flow == 0:
				s.mode = modeBlock
				s.threshold = s.parentCol()
				return nil // the header; the content follows
			}
			if s.flow == 0 {
				inPlain = true
			}
			s.tokCol = i
			s.nodeStart = false
		}
		switch {
		case c == ':' && (isBlank(next) || s.flow > 0 && (next == ',' || next == ']' || next == '}' || !inPlain)):
			// a mapping value follows
			if s.flow == 0 {
				s.keyCol = s.tokCol
				inPlain = false
			}
			s.nodeStart = true
		case s.flow > 0 && c == ',':
			s.nodeStart = true
		case s.flow > 0 && (c == '[' || c == '{'):
			// ends a plain scalar and opens a collection (counted even where
			// the decoder would refuse it)
			s.flow++
			if err := s.checkDepth(); err != nil {
				return err
			}
			s.nodeStart = true
		case s.flow > 0 && (c == ']' || c == '}'):
			s.flow--
			s.nodeStart = false
		}
		i++
	}
	if s.flow == 0 && inPlain {
		s.mode = modePlainCont
		s.threshold = s.parentCol()
	}
	// In flow context nodeStart carries across the line break.
	return nil
}

// parentCol is the indentation a scalar's continuation lines must exceed: the
// column of the key for a mapping value, else of the last sequence entry
// indicator, else of the line.
func (s *scanner) parentCol() int {
	switch {
	case s.keyCol >= 0:
		return s.keyCol
	case s.lastDash >= 0:
		return s.lastDash
	case len(s.stack) > 0:
		return s.stack[len(s.stack)-1]
	}
	return 0
}
