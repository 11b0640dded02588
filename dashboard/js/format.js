// Numbers with their units, times in the reader's local time.

const kwhFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 3 });
const wholeFormat = new Intl.NumberFormat(undefined);
const percentFormat = new Intl.NumberFormat(undefined, { style: 'percent', maximumFractionDigits: 1 });

/** Milliwatt-hours as "1.234 kWh". */
export function kwh(mwh) {
  return `${kwhFormat.format(Number(mwh) / 1_000_000)} kWh`;
}

/** Whole tokens (decimal strings or numbers) with separators. */
export function tokens(amount) {
  try {
    return `${wholeFormat.format(BigInt(amount))} tokens`;
  } catch {
    return `${amount} tokens`;
  }
}

export function percent(ratio) {
  return ratio === null || ratio === undefined ? 'n/a' : percentFormat.format(ratio);
}

/** Chain time (ms) as a local date and time. */
export function time(ms) {
  return new Date(Number(ms)).toLocaleString(undefined, {
    dateStyle: 'short',
    timeStyle: 'short',
  });
}

/** A duration in ms, "3 min 20 s". */
export function duration(ms) {
  const seconds = Math.max(0, Math.round(ms / 1000));
  if (seconds < 60) return `${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  if (minutes < 60) return `${minutes} min ${seconds % 60} s`;
  const hours = Math.floor(minutes / 60);
  if (hours < 48) return `${hours} h ${minutes % 60} min`;
  return `${Math.floor(hours / 24)} days`;
}

/** "joule1abcd…wxyz". */
export function short(address) {
  return address && address.length > 16 ? `${address.slice(0, 10)}…${address.slice(-6)}` : address;
}

/** Escapes text for HTML. */
export function esc(value) {
  return String(value ?? '').replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]);
}

/** kWh text (up to 6 decimals) to mWh, or throws. */
export function parseKwh(text) {
  const match = /^(\d+)(?:[.,](\d{1,6}))?$/.exec(String(text).trim());
  if (!match) throw new Error(`"${text}" is not an energy in kWh (up to six decimals)`);
  return Number(match[1]) * 1_000_000 + Number((match[2] ?? '').padEnd(6, '0'));
}

export function parseWhole(text, what) {
  const value = String(text).trim();
  if (!/^\d+$/.test(value)) throw new Error(`${what}: "${text}" is not a whole number`);
  return value;
}
