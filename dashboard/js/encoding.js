// Transactions as the chain encodes them: the canonical borsh encoding of `crates/primitives`
// (`Transaction`, `Payload`, `SignedTransaction`), the transaction hash the sender signs, and
// addresses (bech32m, `joule1…`). A browser test compares these bytes with Rust's.

import { sha256 } from '@noble/hashes/sha2.js';
import { bech32m } from '@scure/base';

const TX_DOMAIN = new TextEncoder().encode('joule/tx/v1');

/** A growing little-endian byte buffer, borsh style. */
class Writer {
  constructor() {
    this.bytes = [];
  }
  u8(value) {
    this.bytes.push(value & 0xff);
  }
  uint(value, width) {
    if (typeof value === 'number' && !Number.isSafeInteger(value)) {
      throw new Error(`${value} is not an exact whole number (pass large values as decimal strings)`);
    }
    let number = BigInt(value);
    if (number < 0n || number >= 1n << BigInt(width * 8)) {
      throw new Error(`${value} does not fit in ${width * 8} bits`);
    }
    for (let index = 0; index < width; index++) {
      this.bytes.push(Number(number & 0xffn));
      number >>= 8n;
    }
  }
  u32(value) { this.uint(value, 4); }
  u64(value) { this.uint(value, 8); }
  u128(value) { this.uint(value, 16); }
  bool(value) { this.u8(value ? 1 : 0); }
  raw(bytes) {
    for (const byte of bytes) this.bytes.push(byte);
  }
  string(text) {
    const bytes = new TextEncoder().encode(text);
    this.u32(bytes.length);
    this.raw(bytes);
  }
  address(text) { this.raw(addressBytes(text)); }
  done() { return Uint8Array.from(this.bytes); }
}

/** The 32 key bytes of a `joule1…` address (checksum checked). */
export function addressBytes(text) {
  const { prefix, words } = bech32m.decode(text.trim());
  if (prefix !== 'joule') throw new Error(`an address starts with joule1, got ${prefix}1…`);
  const bytes = bech32m.fromWords(words);
  if (bytes.length !== 32) throw new Error(`an address holds 32 bytes, got ${bytes.length}`);
  return bytes;
}

/** The address of a 32-byte public key. */
export function addressOf(publicKey) {
  return bech32m.encode('joule', bech32m.toWords(publicKey));
}

// Payload variants in the order of `enum Payload` (the borsh variant index).
const PAYLOADS = [
  ['transfer', (w, p) => { w.address(p.to); w.u128(p.amount); }],
  ['mint', (w, p) => { w.address(p.to); w.u128(p.amount); w.string(p.fiat_ref); }],
  ['redeem', (w, p) => { w.u128(p.amount); w.string(p.fiat_ref); }],
  ['register_meter', (w, p) => { w.address(p.meter); w.address(p.owner); }],
  ['deregister_meter', (w, p) => { w.address(p.meter); }],
  ['reading', (w, p) => { w.u64(p.interval); w.u64(p.produced_mwh); w.u64(p.consumed_mwh); w.bool(p.estimated); }],
  ['place_order', (w, p) => { w.u64(p.slot); w.u8(side(p.side)); w.u64(p.energy_mwh); w.u64(p.price); }],
  ['cancel_order', (w, p) => { w.u64(p.order); }],
  ['propose_contract', (w, p) => {
    w.address(p.prosumer); w.u64(p.price); w.u64(p.max_energy_mwh); w.u64(p.first_slot); w.u64(p.last_slot);
  }],
  ['accept_contract', (w, p) => { w.u64(p.contract); }],
  ['end_contract', (w, p) => { w.u64(p.contract); }],
  ['set_tariffs', (w, p) => { w.u64(p.from_slot); w.u64(p.retail); w.u64(p.feed_in); w.u64(p.grid_fee); }],
  ['set_validators', (w, p) => {
    w.u64(p.from_height);
    w.u32(p.validators.length);
    for (const validator of p.validators) {
      w.string(validator.name); w.address(validator.address); w.u64(validator.power);
    }
  }],
  ['transfer_certificates', (w, p) => { w.address(p.to); w.u64(p.count); }],
  ['retire_certificates', (w, p) => { w.u64(p.count); }],
];

function side(name) {
  if (name === 'bid') return 0;
  if (name === 'ask') return 1;
  throw new Error(`side is "bid" or "ask", got ${name}`);
}

/**
 * The borsh encoding of a `Transaction`: `{chain_id, sender, nonce, fee, payload}`, where `fee`
 * (tokens for the block's proposer or miner, a decimal string or number) may be left out for 0,
 * and payload is shaped like the API's `PayloadDto` (`{type: "place_order", slot, side,
 * energy_mwh, price}`).
 */
export function encodeTransaction(tx) {
  const writer = new Writer();
  writer.string(tx.chain_id);
  writer.address(tx.sender);
  writer.u64(tx.nonce);
  writer.u128(tx.fee ?? 0);
  const index = PAYLOADS.findIndex(([type]) => type === tx.payload.type);
  if (index < 0) throw new Error(`unknown payload type ${tx.payload.type}`);
  writer.u8(index);
  PAYLOADS[index][1](writer, tx.payload);
  return writer.done();
}

/** The transaction hash: SHA-256 of (domain length, domain, encoding). */
export function transactionHash(encoded) {
  const input = new Uint8Array(1 + TX_DOMAIN.length + encoded.length);
  input[0] = TX_DOMAIN.length;
  input.set(TX_DOMAIN, 1);
  input.set(encoded, 1 + TX_DOMAIN.length);
  return sha256(input);
}

/** A `SignedTransaction`: the transaction's encoding followed by the 64 signature bytes. */
export function encodeSigned(encoded, signature) {
  const out = new Uint8Array(encoded.length + signature.length);
  out.set(encoded);
  out.set(signature, encoded.length);
  return out;
}

export function hex(bytes) {
  return Array.from(bytes, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export function fromHex(text) {
  if (text.length % 2 || /[^0-9a-f]/i.test(text)) throw new Error('not hex');
  const out = new Uint8Array(text.length / 2);
  for (let index = 0; index < out.length; index++) out[index] = parseInt(text.substr(index * 2, 2), 16);
  return out;
}
