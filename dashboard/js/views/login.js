// Log in: open your keystore file here (it never leaves the browser), and sign the node's
// challenge with your key.

import { notice, explain } from '../app.js';

export async function render(root) {
  root.innerHTML = `
    <h1>Log in</h1>
    <p>Choose your account's keystore file (the <code>NAME.json</code> file of your wallet's keystore) and
      type its password. The file is opened in this browser; your key never leaves it. The node
      only sees your signature on its login challenge.</p>
    <form id="login" class="card narrow">
      <label>Keystore file <input type="file" id="keystore" accept=".json,application/json" required></label>
      <label>Password <input type="password" id="password" autocomplete="current-password" required></label>
      <button type="submit" id="login-button">Log in</button>
      <p id="login-progress" class="muted" aria-live="polite"></p>
    </form>`;
  const form = root.querySelector('#login');
  form.onsubmit = async (event) => {
    event.preventDefault();
    const progress = root.querySelector('#login-progress');
    const button = root.querySelector('#login-button');
    button.disabled = true;
    try {
      const file = root.querySelector('#keystore').files[0];
      if (!file) throw new Error('choose your keystore file');
      progress.textContent = 'Opening the keystore…';
      const wallet = await import('../wallet.js');
      const opened = await wallet.openKeystore(await file.text(), root.querySelector('#password').value, (p) => {
        progress.textContent = `Opening the keystore… ${Math.round(p * 100)} %`;
      });
      progress.textContent = `Signing the login challenge as ${opened.name}…`;
      await wallet.login();
      const { loggedIn } = await import('../main.js');
      await loggedIn();
    } catch (error) {
      progress.textContent = '';
      notice(`Login failed: ${explain(error)}`, 'error');
    } finally {
      button.disabled = false;
    }
  };
}

/** A small form that unlocks the keystore again for signing (after a reload). */
export function unlockForm(onUnlocked) {
  const dialog = document.createElement('form');
  dialog.className = 'card unlock';
  dialog.innerHTML = `<p>To sign, open your keystore again (it is kept in this page only, and a reload forgets it).</p>
    <label>Keystore file <input type="file" accept=".json,application/json" required></label>
    <label>Password <input type="password" autocomplete="current-password" required></label>
    <button type="submit">Unlock</button>`;
  dialog.onsubmit = async (event) => {
    event.preventDefault();
    try {
      const [fileInput, passwordInput] = dialog.querySelectorAll('input');
      const wallet = await import('../wallet.js');
      await wallet.openKeystore(await fileInput.files[0].text(), passwordInput.value);
      dialog.remove();
      onUnlocked();
    } catch (error) {
      notice(explain(error), 'error');
    }
  };
  return dialog;
}
