//! The little DER the verifier needs: SubjectPublicKeyInfo for the host's `verify_signature`
//! (built once per key at JWKS parse time), the SubjectPublicKeyInfo inside an x509
//! certificate, and ECDSA signatures as `SEQUENCE { r, s }`. Hand-written because it is this
//! small; a general ASN.1 crate would cost more wasm than it saves code.

const SEQUENCE: u8 = 0x30;
const INTEGER: u8 = 0x02;
const BIT_STRING: u8 = 0x03;
const NULL: u8 = 0x05;
const OID: u8 = 0x06;
const CONTEXT_0: u8 = 0xa0;

/// `rsaEncryption` (1.2.840.113549.1.1.1), content bytes.
const OID_RSA: &[u8] = &[0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x01];
/// `id-ecPublicKey` (1.2.840.10045.2.1).
const OID_EC_PUBLIC_KEY: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x02, 0x01];
/// `prime256v1` (1.2.840.10045.3.1.7).
pub const OID_P256: &[u8] = &[0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07];
/// `secp384r1` (1.3.132.0.34).
pub const OID_P384: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x22];
/// `secp521r1` (1.3.132.0.35).
pub const OID_P521: &[u8] = &[0x2b, 0x81, 0x04, 0x00, 0x23];
/// `id-Ed25519` (1.3.101.112).
const OID_ED25519: &[u8] = &[0x2b, 0x65, 0x70];

fn push_len(out: &mut Vec<u8>, len: usize) {
    if len < 0x80 {
        out.push(len as u8);
    } else {
        let bytes = len.to_be_bytes();
        let skip = bytes.iter().take_while(|b| **b == 0).count();
        let significant = bytes.get(skip..).unwrap_or_default();
        out.push(0x80 | significant.len() as u8);
        out.extend_from_slice(significant);
    }
}

fn tlv(tag: u8, content: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(content.len() + 6);
    out.push(tag);
    push_len(&mut out, content.len());
    out.extend_from_slice(content);
    out
}

/// A non-negative big-endian integer as a DER INTEGER (minimal, with a 0 byte when the top
/// bit is set).
fn unsigned_integer(be: &[u8]) -> Vec<u8> {
    let integer = Unsigned::new(be);
    let mut out = Vec::with_capacity(integer.tlv_len());
    integer.push_tlv(&mut out);
    out
}

fn concat(parts: &[&[u8]]) -> Vec<u8> {
    parts.concat()
}

fn bit_string(content: &[u8]) -> Vec<u8> {
    tlv(BIT_STRING, &concat(&[&[0], content]))
}

/// SubjectPublicKeyInfo of an RSA key (`rsaEncryption`, NULL parameters).
pub fn rsa_spki(n: &[u8], e: &[u8]) -> Vec<u8> {
    let algorithm = tlv(SEQUENCE, &concat(&[&tlv(OID, OID_RSA), &tlv(NULL, &[])]));
    let key = tlv(
        SEQUENCE,
        &concat(&[&unsigned_integer(n), &unsigned_integer(e)]),
    );
    tlv(SEQUENCE, &concat(&[&algorithm, &bit_string(&key)]))
}

/// SubjectPublicKeyInfo of an EC key: `id-ecPublicKey` with a named curve, SEC1 point.
pub fn ec_spki(curve_oid: &[u8], sec1_point: &[u8]) -> Vec<u8> {
    let algorithm = tlv(
        SEQUENCE,
        &concat(&[&tlv(OID, OID_EC_PUBLIC_KEY), &tlv(OID, curve_oid)]),
    );
    tlv(SEQUENCE, &concat(&[&algorithm, &bit_string(sec1_point)]))
}

/// SubjectPublicKeyInfo of an Ed25519 key (RFC 8410).
pub fn ed25519_spki(raw: &[u8; 32]) -> Vec<u8> {
    let algorithm = tlv(SEQUENCE, &tlv(OID, OID_ED25519));
    tlv(SEQUENCE, &concat(&[&algorithm, &bit_string(raw)]))
}

/// An ECDSA signature as DER `SEQUENCE { INTEGER r, INTEGER s }` from big-endian halves, the
/// form BoringSSL's `EVP_DigestVerify` takes.
/// Built in one allocation: it is made for every ES* token verified by the host.
pub fn ecdsa_signature(r: &[u8], s: &[u8]) -> Vec<u8> {
    let (r, s) = (Unsigned::new(r), Unsigned::new(s));
    let content = r.tlv_len() + s.tlv_len();
    let mut out = Vec::with_capacity(1 + len_len(content) + content);
    out.push(SEQUENCE);
    push_len(&mut out, content);
    r.push_tlv(&mut out);
    s.push_tlv(&mut out);
    out
}

/// A non-negative big-endian integer as DER content: its significant bytes, after a 0 byte
/// when the top bit is set (or when there are none).
struct Unsigned<'a> {
    sign_byte: bool,
    digits: &'a [u8],
}

impl<'a> Unsigned<'a> {
    fn new(be: &'a [u8]) -> Unsigned<'a> {
        let zeros = be.iter().take_while(|b| **b == 0).count();
        let digits = be.get(zeros..).unwrap_or_default();
        Unsigned {
            sign_byte: digits.first().is_none_or(|b| b & 0x80 != 0),
            digits,
        }
    }

    fn content_len(&self) -> usize {
        self.digits.len() + usize::from(self.sign_byte)
    }

    fn tlv_len(&self) -> usize {
        1 + len_len(self.content_len()) + self.content_len()
    }

    fn push_tlv(&self, out: &mut Vec<u8>) {
        out.push(INTEGER);
        push_len(out, self.content_len());
        if self.sign_byte {
            out.push(0);
        }
        out.extend_from_slice(self.digits);
    }
}

/// How many bytes [`push_len`] writes for `len`.
fn len_len(len: usize) -> usize {
    if len < 0x80 {
        1
    } else {
        1 + len.to_be_bytes().iter().skip_while(|b| **b == 0).count()
    }
}

/// One DER element: `(tag, content, whole element, rest)`.
type Element<'a> = (u8, &'a [u8], &'a [u8], &'a [u8]);

fn read(input: &[u8]) -> Option<Element<'_>> {
    let (&tag, after_tag) = input.split_first()?;
    let (&first, after_len) = after_tag.split_first()?;
    let (len, body) = if first < 0x80 {
        (usize::from(first), after_len)
    } else {
        let count = usize::from(first & 0x7f);
        if count == 0 || count > 4 {
            return None;
        }
        let len_bytes = after_len.get(..count)?;
        let len = len_bytes
            .iter()
            .fold(0usize, |acc, b| (acc << 8) | usize::from(*b));
        (len, after_len.get(count..)?)
    };
    let content = body.get(..len)?;
    let rest = body.get(len..)?;
    let whole_len = input.len().checked_sub(rest.len())?;
    Some((tag, content, input.get(..whole_len)?, rest))
}

fn expect(input: &[u8], want: u8) -> Option<(&[u8], &[u8], &[u8])> {
    let (tag, content, whole, rest) = read(input)?;
    (tag == want).then_some((content, whole, rest))
}

/// The SubjectPublicKeyInfo element (whole TLV) of a DER x509 certificate.
pub fn certificate_spki(cert: &[u8]) -> Option<&[u8]> {
    let (certificate, _, _) = expect(cert, SEQUENCE)?;
    let (tbs, _, _) = expect(certificate, SEQUENCE)?;
    let mut fields = tbs;
    // [0] version is optional (absent means v1).
    if let Some((CONTEXT_0, _, _, rest)) = read(fields) {
        fields = rest;
    }
    let (_, _, fields) = expect(fields, INTEGER)?; // serialNumber
    let (_, _, fields) = expect(fields, SEQUENCE)?; // signature
    let (_, _, fields) = expect(fields, SEQUENCE)?; // issuer
    let (_, _, fields) = expect(fields, SEQUENCE)?; // validity
    let (_, _, fields) = expect(fields, SEQUENCE)?; // subject
    let (_, spki, _) = expect(fields, SEQUENCE)?;
    Some(spki)
}

/// `(n, e)` of an `rsaEncryption` SubjectPublicKeyInfo; `None` for any other key type.
pub fn rsa_spki_components(spki: &[u8]) -> Option<(&[u8], &[u8])> {
    let (content, _, _) = expect(spki, SEQUENCE)?;
    let (algorithm, _, rest) = expect(content, SEQUENCE)?;
    let (oid, _, _) = expect(algorithm, OID)?;
    if oid != OID_RSA {
        return None;
    }
    let (bits, _, _) = expect(rest, BIT_STRING)?;
    let (&unused, key) = bits.split_first()?;
    if unused != 0 {
        return None;
    }
    let (key, _, _) = expect(key, SEQUENCE)?;
    let (n, _, rest) = expect(key, INTEGER)?;
    let (e, _, _) = expect(rest, INTEGER)?;
    Some((n, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lengths_and_integer_signs() {
        assert_eq!(unsigned_integer(&[0x00, 0x7f]), [0x02, 0x01, 0x7f]);
        assert_eq!(unsigned_integer(&[0x80]), [0x02, 0x02, 0x00, 0x80]);
        assert_eq!(unsigned_integer(&[]), [0x02, 0x01, 0x00]);
        let long = tlv(OID, &[7u8; 300]);
        assert_eq!(&long[..4], &[OID, 0x82, 0x01, 0x2c]);
        let (tag, content, whole, rest) = read(&long).unwrap();
        assert_eq!(
            (tag, content.len(), whole.len(), rest.len()),
            (OID, 300, 304, 0)
        );
    }

    #[test]
    fn ecdsa_signatures() {
        // X9.62 `Ecdsa-Sig-Value`, written by hand: r = 0x00 0x7f.. (leading zero dropped),
        // s = 0x80.. (sign byte added).
        let r = [0x00, 0x7f, 0x01];
        let s = [0x80, 0x02];
        assert_eq!(
            ecdsa_signature(&r, &s),
            [0x30, 0x09, 0x02, 0x02, 0x7f, 0x01, 0x02, 0x03, 0x00, 0x80, 0x02]
        );
        assert_eq!(
            ecdsa_signature(&[], &[0]),
            [0x30, 0x06, 0x02, 0x01, 0x00, 0x02, 0x01, 0x00]
        );
        // Long form once the content passes 127 bytes (P-521 sizes and beyond).
        let big = [0xffu8; 70];
        let sig = ecdsa_signature(&big, &big);
        assert_eq!(&sig[..3], &[0x30, 0x81, 2 * (2 + 71)]);
        assert_eq!(sig.len(), 3 + 2 * (2 + 71));
        let (tag, content, _, rest) = read(&sig).unwrap();
        assert_eq!((tag, content.len(), rest.len()), (SEQUENCE, 146, 0));
        // The same bytes as the element-by-element construction.
        for (r, s) in [
            (&[1u8; 32][..], &[0x90u8; 33][..]),
            (&[0u8; 66][..], &[7u8; 200][..]),
        ] {
            assert_eq!(
                ecdsa_signature(r, s),
                tlv(
                    SEQUENCE,
                    &concat(&[&unsigned_integer(r), &unsigned_integer(s)])
                )
            );
        }
    }

    #[test]
    fn rsa_spki_round_trips() {
        let n = [0xc3u8; 256];
        let spki = rsa_spki(&n, &[1, 0, 1]);
        let (n_back, e_back) = rsa_spki_components(&spki).unwrap();
        assert_eq!(n_back.get(1..), Some(&n[..])); // sign byte first
        assert_eq!(e_back, [1, 0, 1]);
        assert!(rsa_spki_components(&ed25519_spki(&[0; 32])).is_none());
        assert!(read(&spki[..spki.len() - 1]).is_none());
    }
}
