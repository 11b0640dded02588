// Contracts: propose a supply contract to a producer, accept one proposed to you, end one,
// and see each contract's status.

import { app, call, field, onHead, signAndSend, table } from '../app.js';
import { esc, kwh, parseKwh, parseWhole, short } from '../format.js';

export async function render(root) {
  const market = app.market;
  root.innerHTML = `
    <h1>Contracts</h1>
    <section class="card"><h2>My contracts</h2><div id="contracts"></div></section>
    <section class="card"><h2>Propose a contract to a producer</h2>
      <p class="muted">While it runs, the contract is served first and you buy from no other producer.</p>
      <form id="propose" class="inline">
        <label>Producer <select name="prosumer" required></select></label>
        <label>Price <input name="price" inputmode="numeric" required> tokens/kWh</label>
        <label>Up to <input name="kwh" inputmode="decimal" required> kWh per slot</label>
        <label>From slot <input name="first" type="number" min="0" value="${market.next_open_slot}" required></label>
        <label>to slot <input name="last" type="number" min="0" value="${market.next_open_slot + 96}" required></label>
        <button type="submit">Sign and propose</button>
      </form>
    </section>`;
  const own = app.session.account;
  const draw = async () => {
    const contracts = await call('contract_list', [own]);
    root.querySelector('#contracts').innerHTML = table(
      ['contract', 'status', 'consumer', 'producer', 'price', 'per slot', 'slots', ''],
      contracts.map((contract) => {
        const actions = [];
        if (contract.status === 'proposed' && contract.prosumer === own) actions.push(`<button type="button" data-accept="${contract.id}">Accept</button>`);
        if (contract.status !== 'cancelled') actions.push(`<button type="button" data-end="${contract.id}">${contract.status === 'proposed' ? 'Withdraw' : 'End'}</button>`);
        const who = (address) => (address === own ? '<strong>you</strong>' : esc(short(address)));
        return [`#${contract.id}`, `<span data-status="${contract.id}">${esc(contract.status)}</span>`, who(contract.consumer), who(contract.prosumer), contract.price, kwh(contract.max_energy_mwh), `${contract.first_slot}–${contract.last_slot}`, actions.join(' ')];
      }),
      'no contracts',
    );
    for (const button of root.querySelectorAll('[data-accept]')) {
      button.onclick = () => signAndSend(`Accepting contract #${button.dataset.accept}`, { type: 'accept_contract', contract: Number(button.dataset.accept) }, button, draw);
    }
    for (const button of root.querySelectorAll('[data-end]')) {
      button.onclick = () => signAndSend(`Ending contract #${button.dataset.end}`, { type: 'end_contract', contract: Number(button.dataset.end) }, button, draw);
    }
  };
  const producers = await call('market_producers', []);
  root.querySelector('select[name="prosumer"]').innerHTML = producers
    .filter((producer) => producer.account !== own)
    .map((producer) => `<option value="${esc(producer.account)}">${esc(short(producer.account))} (produced ${kwh(producer.produced_mwh)}, lowest ask ${producer.lowest_ask ?? '–'})</option>`)
    .join('');
  const form = root.querySelector('#propose');
  form.onsubmit = async (event) => {
    event.preventDefault();
    try {
      const payload = {
        type: 'propose_contract',
        prosumer: field(form, 'prosumer'),
        price: Number(parseWhole(field(form, 'price'), 'price')),
        max_energy_mwh: parseKwh(field(form, 'kwh')),
        first_slot: Number(parseWhole(field(form, 'first'), 'first slot')),
        last_slot: Number(parseWhole(field(form, 'last'), 'last slot')),
      };
      await signAndSend('Proposing the contract', payload, form, draw);
    } catch (error) {
      const { notice } = await import('../app.js');
      notice(error.message, 'error');
    }
  };
  await draw();
  return onHead((head) => { if (head.tx_count) draw().catch(() => {}); });
}
