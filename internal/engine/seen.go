package engine

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
)

// Seen maps ids already written to their time (unix seconds): what
// de-duplication still needs of a lane's records. In JSON it is an
// object from unix second to the sorted ids of that second, which is compact
// and deterministic.
type Seen map[string]int64

// MarshalJSON encodes the set grouped by second, seconds ascending.
func (s Seen) MarshalJSON() ([]byte, error) {
	byT := make(map[int64][]string)
	for id, t := range s {
		byT[t] = append(byT[t], id)
	}
	ts := make([]int64, 0, len(byT))
	for t := range byT {
		ts = append(ts, t)
	}
	slices.Sort(ts)
	var b bytes.Buffer
	b.Grow(len(s)*35 + len(ts)*16 + 2)
	b.WriteByte('{')
	for i, t := range ts {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteByte('"')
		b.WriteString(strconv.FormatInt(t, 10))
		b.WriteString(`":[`)
		ids := byT[t]
		slices.Sort(ids)
		for j, id := range ids {
			if j > 0 {
				b.WriteByte(',')
			}
			// Ids are validated as plain tokens on the way in
			// (ValidID), so quoting is trivial.
			b.WriteByte('"')
			b.WriteString(id)
			b.WriteByte('"')
		}
		b.WriteByte(']')
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// UnmarshalJSON decodes the grouped form.
func (s *Seen) UnmarshalJSON(data []byte) error {
	var byT map[string][]string
	if err := json.Unmarshal(data, &byT); err != nil {
		return fmt.Errorf("failed to decode seen set: %w", err)
	}
	out := make(Seen)
	for k, ids := range byT {
		t, err := strconv.ParseInt(k, 10, 64)
		if err != nil {
			return fmt.Errorf("failed to decode seen set: bad second %q", k)
		}
		for _, id := range ids {
			out[id] = t
		}
	}
	*s = out
	return nil
}
