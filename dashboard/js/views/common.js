// Pieces several views share: the period picker and the member picker of the operator.

import { app, call, chainNow, slotOf, isOperator } from '../app.js';
import { esc, short } from '../format.js';

/** Slots per day with the chain's slot length. */
export function slotsPerDay() {
  return Math.round((24 * 60) / app.market.slot_minutes);
}

/** The period picker: day, week or custom range; calls `onChange({from, to})` in slots. */
export function periodPicker(element, onChange, initial = 'day') {
  element.innerHTML = `
    <fieldset class="period"><legend>Period</legend>
      <label><input type="radio" name="period" value="day"> Last day</label>
      <label><input type="radio" name="period" value="week"> Last week</label>
      <label><input type="radio" name="period" value="custom"> From
        <input type="datetime-local" name="from"> to <input type="datetime-local" name="to"></label>
      <button type="button" name="apply">Show</button>
    </fieldset>`;
  const radios = element.querySelectorAll('input[name="period"]');
  for (const radio of radios) radio.checked = radio.value === initial;
  const toLocal = (ms) => new Date(ms - new Date(ms).getTimezoneOffset() * 60_000).toISOString().slice(0, 16);
  const now = chainNow();
  element.querySelector('[name="from"]').value = toLocal(now - 86_400_000);
  element.querySelector('[name="to"]').value = toLocal(now);
  const current = () => {
    const choice = [...radios].find((radio) => radio.checked)?.value ?? 'day';
    const to = slotOf(chainNow());
    if (choice === 'week') return { from: to - 7 * slotsPerDay() + 1, to, choice };
    if (choice === 'custom') {
      const from = slotOf(new Date(element.querySelector('[name="from"]').value).getTime());
      const until = slotOf(new Date(element.querySelector('[name="to"]').value).getTime());
      return { from: Math.min(from, until), to: Math.max(from, until), choice };
    }
    return { from: to - slotsPerDay() + 1, to, choice };
  };
  for (const radio of radios) radio.onchange = () => radio.value !== 'custom' && onChange(current());
  element.querySelector('[name="apply"]').onclick = () => onChange(current());
  return current;
}

/** For the operator: a picker of the member whose data the view shows. */
export async function subjectPicker(element, onChange) {
  if (!isOperator()) {
    element.innerHTML = '';
    return;
  }
  const accounts = (await call('account_list')).filter((account) => account.meters.length || account.role === 'operator');
  element.innerHTML = `<label>Member <select name="subject">${accounts
    .map((account) => `<option value="${esc(account.address)}" ${account.address === app.subject ? 'selected' : ''}>${esc(short(account.address))} (${esc(account.role)}, ${account.meters.length} meter${account.meters.length === 1 ? '' : 's'})</option>`)
    .join('')}</select></label>`;
  element.querySelector('select').onchange = (event) => {
    app.subject = event.target.value;
    onChange();
  };
}
