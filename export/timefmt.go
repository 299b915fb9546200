package export

import (
	"errors"
	"time"
)

// The index keeps times in milliseconds and every row carries three of
// them, so formatting them is a large share of a text export: time.Format
// costs about 100ns a call, these appenders a fraction of that. They write
// the same bytes as time.Format(time.RFC3339Nano) and protojson, which
// the tests check over a wide range.

// Seconds bounds of protojson's Timestamp: 0001-01-01 to 9999-12-31.
const (
	minProtoSeconds = -62135596800
	maxProtoSeconds = 253402300799
)

var errTimeRange = errors.New("export: timestamp out of range 0001-01-01..9999-12-31")

// encodeCache is what a row encoder remembers between rows. The formatted
// dates of recent days: a crawl's times fall on a few hundred days, and
// computing a date costs more than the rest of a time (direct-mapped by
// day number). And the last target URL and its encoding: the rows of a
// target are adjacent (7.7 of them on average on the generated index),
// and comparing a URL costs a fraction of escaping it. The zero value is
// empty and ready. Not safe for concurrent use.
type encodeCache struct {
	day  [512]int64 // day number + 1 (days from 1970 only); 0 marks an empty slot
	date [512][10]byte

	target    string
	targetEnc []byte
}

// appendTarget appends the encoding of a target URL, by enc when it is not
// the last one. c may be nil.
func (c *encodeCache) appendTarget(dst []byte, url string, enc func([]byte, string) ([]byte, bool)) ([]byte, bool) {
	if c == nil {
		return enc(dst, url)
	}
	if url == c.target && c.targetEnc != nil {
		return append(dst, c.targetEnc...), true
	}
	start := len(dst)
	dst, ok := enc(dst, url)
	if ok {
		c.target, c.targetEnc = url, append(c.targetEnc[:0], dst[start:]...)
	}
	return dst, ok
}

// appendDateTime appends "YYYY-MM-DDTHH:MM:SS" of secs (UTC), for years 1
// to 9999. c may be nil.
func appendDateTime(dst []byte, c *encodeCache, secs int64) []byte {
	days, sod := secs/86400, secs%86400
	if sod < 0 {
		days, sod = days-1, sod+86400
	}
	var date [10]byte
	slot := days & 511
	if c != nil && days >= 0 && c.day[slot] == days+1 {
		date = c.date[slot]
	} else {
		y, m, d := civil(days)
		date = [10]byte{byte('0' + y/1000), byte('0' + y/100%10), byte('0' + y/10%10), byte('0' + y%10), '-',
			byte('0' + m/10), byte('0' + m%10), '-', byte('0' + d/10), byte('0' + d%10)}
		if c != nil && days >= 0 {
			c.day[slot], c.date[slot] = days+1, date
		}
	}
	h, mi, s := int(sod/3600), int(sod/60%60), int(sod%60)
	dst = append(dst, date[:]...)
	return append(dst, 'T',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+s/10), byte('0'+s%10))
}

// civil converts days since 1970-01-01 to a proleptic Gregorian date
// (Howard Hinnant's days_from_civil inverse: no tables, no loops).
func civil(days int64) (y, m, d int) {
	z := days + 719468
	era := z / 146097
	if z < 0 && z%146097 != 0 {
		era--
	}
	doe := z - era*146097
	yoe := (doe - doe/1460 + doe/36524 - doe/146096) / 365
	doy := doe - (365*yoe + yoe/4 - yoe/100)
	mp := (5*doy + 2) / 153
	d = int(doy - (153*mp+2)/5 + 1)
	if mp < 10 {
		m = int(mp + 3)
	} else {
		m = int(mp - 9)
	}
	y = int(yoe + era*400)
	if m <= 2 {
		y++
	}
	return y, m, d
}

// appendFrac9 appends nanos as 9 digits and returns dst.
func appendFrac9(dst []byte, nanos int32) []byte {
	var b [9]byte
	for i := 8; i >= 0; i-- {
		b[i] = byte('0' + nanos%10)
		nanos /= 10
	}
	return append(dst, b[:]...)
}

// appendRFC3339Nano appends the time as time.RFC3339Nano formats it in
// UTC: trailing zeros of the fraction dropped, no fraction when it is zero.
func appendRFC3339Nano(dst []byte, c *encodeCache, secs int64, nanos int32) []byte {
	if secs < minProtoSeconds || secs > maxProtoSeconds || nanos < 0 || nanos >= 1e9 {
		return time.Unix(secs, int64(nanos)).UTC().AppendFormat(dst, time.RFC3339Nano)
	}
	dst = appendDateTime(dst, c, secs)
	if nanos != 0 {
		dst = append(dst, '.')
		dst = appendFrac9(dst, nanos)
		for dst[len(dst)-1] == '0' {
			dst = dst[:len(dst)-1]
		}
	}
	return append(dst, 'Z')
}

// appendProtoTime appends the time as protojson writes a Timestamp: UTC,
// with 0, 3, 6 or 9 fractional digits. Like protojson, it refuses years
// outside 1..9999.
func appendProtoTime(dst []byte, c *encodeCache, secs int64, nanos int32) ([]byte, error) {
	if secs < minProtoSeconds || secs > maxProtoSeconds || nanos < 0 || nanos >= 1e9 {
		return dst, errTimeRange
	}
	dst = appendDateTime(dst, c, secs)
	switch {
	case nanos == 0:
	case nanos%1e6 == 0: // the index's times are milliseconds
		ms := nanos / 1e6
		dst = append(dst, '.', byte('0'+ms/100), byte('0'+ms/10%10), byte('0'+ms%10))
	default:
		dst = append(dst, '.')
		dst = appendFrac9(dst, nanos)
		if nanos%1e3 == 0 {
			dst = dst[:len(dst)-3]
		}
	}
	return append(dst, 'Z'), nil
}
