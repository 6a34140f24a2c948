package packet

import "io"

// DefaultBufferSize is the read buffer a Reader starts with: big enough
// that a stream of small packets costs one Read call per buffer-full rather
// than two per packet.
const DefaultBufferSize = 4096

// Reader reads whole packets from a byte stream such as a net.Conn. It
// buffers its reads itself, so wrapping the source in a bufio.Reader gains
// nothing.
//
// The body returned by Next (and the strings of a packet from ReadPacket)
// live in the Reader's buffer and are overwritten by the next call: copy
// whatever must outlive it. The buffer grows for a large packet up to the
// maximum packet size and never beyond, and the size in a packet's fixed
// header is checked against that maximum before any memory is set aside
// for its body, so a hostile length costs nothing.
//
// A Reader is not safe for concurrent use. After an error other than a
// decode error from ReadPacket, the stream is out of step and the Reader
// must be abandoned.
type Reader struct {
	src     io.Reader
	max     int
	buf     []byte // buf[r:w] holds bytes read but not yet returned
	r, w    int
	err     error // sticky error of src
	version Version
	start   int // the first buffer's size
}

// NewReader returns a Reader that refuses any packet whose total size, fixed
// header included (the way MQTT 5.0 counts Maximum Packet Size), exceeds
// maxPacketSize. Zero or a negative value means the protocol's maximum of
// 268,435,460 bytes, which a client exposed to untrusted peers should not
// use: the Reader may then allocate that much for one packet.
func NewReader(src io.Reader, maxPacketSize int) *Reader {
	if maxPacketSize <= 0 || maxPacketSize > 1+4+MaxRemainingLength {
		maxPacketSize = 1 + 4 + MaxRemainingLength
	}
	return &Reader{src: src, max: maxPacketSize, version: V311, start: DefaultBufferSize}
}

// NewReaderSize is NewReader with a first buffer of size bytes instead of
// DefaultBufferSize: smaller where many mostly idle connections each hold
// one, larger for bulk streams of big packets. The buffer still grows for
// a packet that does not fit.
func NewReaderSize(src io.Reader, maxPacketSize, size int) *Reader {
	r := NewReader(src, maxPacketSize)
	r.start = max(size, 16)
	return r
}

// SetVersion sets the protocol version that ReadPacket decodes with and
// that decides how strictly Next checks the remaining length: MQTT 5.0
// forbids a longer encoding than the value needs. The default is V311.
// ReadPacket sets it itself when it reads a CONNECT.
func (r *Reader) SetVersion(v Version) { r.version = v }

// Version returns the protocol version in use.
func (r *Reader) Version() Version { return r.version }

// MaxPacketSize returns the limit given to NewReader.
func (r *Reader) MaxPacketSize() int { return r.max }

// Next reads the next packet and returns its fixed header and body. The body
// is valid until the next call. It returns io.EOF when the stream ends
// between packets and io.ErrUnexpectedEOF when it ends inside one; a
// fixed header that is invalid or announces a packet larger than the
// maximum is reported (ErrMalformed, ErrPacketTooLarge) before the body is
// read.
func (r *Reader) Next() (FixedHeader, []byte, error) {
	// The fixed header is at most five bytes; a shorter packet may be the
	// last thing in the stream, so fill only until the length is complete.
	var h FixedHeader
	hdr := 0
	for {
		avail := r.buf[r.r:r.w]
		if len(avail) >= 2 {
			n, used := parseVarint(avail[1:], r.version == V5)
			if used < 0 {
				return h, nil, newError(ErrMalformed, Type(avail[0]>>4), "remaining length", "invalid variable byte integer")
			}
			if used > 0 {
				h = FixedHeader{Type: Type(avail[0] >> 4), Flags: avail[0] & 0x0f, RemainingLength: n}
				hdr = 1 + used
				break
			}
		}
		if err := r.fill(5); err != nil {
			if err == io.EOF && r.w > r.r {
				err = io.ErrUnexpectedEOF
			}
			return h, nil, err
		}
	}
	if h.Type == 0 {
		return h, nil, newError(ErrMalformed, 0, "packet type", "reserved type 0")
	}
	total := hdr + h.RemainingLength
	if total > r.max {
		return h, nil, newError(ErrPacketTooLarge, h.Type, "remaining length",
			itoa(total)+" bytes exceeds the maximum packet size of "+itoa(r.max))
	}
	for r.w-r.r < total {
		if err := r.fill(total); err != nil {
			if err == io.EOF {
				err = io.ErrUnexpectedEOF
			}
			return h, nil, err
		}
	}
	body := r.buf[r.r+hdr : r.r+total : r.r+total]
	r.r += total
	return h, body, nil
}

// fill reads at least one more byte into the buffer, first making room for
// a packet of size need at the front of it. The buffer grows only to need,
// which Next has already checked against the maximum.
func (r *Reader) fill(need int) error {
	if r.err != nil {
		return r.err
	}
	if r.r > 0 && (r.r == r.w || len(r.buf)-r.r < need) {
		r.w = copy(r.buf, r.buf[r.r:r.w])
		r.r = 0
	}
	if len(r.buf)-r.r < need || r.w == len(r.buf) {
		size := max(need, 2*len(r.buf), min(r.start, r.max))
		size = min(size, max(r.max, need))
		nb := make([]byte, size)
		r.w = copy(nb, r.buf[r.r:r.w])
		r.r = 0
		r.buf = nb
	}
	for range 100 {
		n, err := r.src.Read(r.buf[r.w:])
		r.w += n
		if err != nil {
			// Keep the error for the next call: the bytes that came with it
			// may complete a packet first.
			r.err = err
		}
		if n > 0 {
			return nil
		}
		if err != nil {
			return err
		}
	}
	r.err = io.ErrNoProgress
	return r.err
}

// ReadPacket reads the next packet and decodes it with the Reader's
// version into a newly allocated value; its strings and slices alias the
// Reader's buffer until the next call. After a CONNECT it adopts the
// CONNECT's version, which lets a broker-side Reader start at the default.
func (r *Reader) ReadPacket() (Packet, error) {
	h, body, err := r.Next()
	if err != nil {
		return nil, err
	}
	p, err := Decode(h, body, r.version)
	if err != nil {
		return nil, err
	}
	if c, ok := p.(*Connect); ok {
		r.version = c.Version
	}
	return p, nil
}
