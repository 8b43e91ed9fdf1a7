// Changing the email address. The project mails a confirmation link to the new address
// (and, with "secure email change", on by default, to the current one too); the links come
// back to this app (the engine sent them with a PKCE flow), so opening them on this
// computer finishes the change. GoTrue's stock templates mail links only: a project whose
// templates also show the code lets the person type it here instead.
import * as auth from './auth.js';

const $ = (id) => document.getElementById(id);
let pending = null; // { current, next } while a change waits for its links (or codes)

function finish(email, message) {
  pending = null;
  $('email-change-step').hidden = true;
  $('new-email').value = '';
  message(`Your email address is now ${email}.`);
}

/** What a link of an email change did (`auth:link`): half done, or done. */
export function onEmailChangeLink(outcome, message) {
  if (outcome.outcome === 'emailChanged') {
    finish(outcome.email, message);
    return true;
  }
  if (outcome.outcome === 'emailChangeWaiting') {
    const other = pending && outcome.email === pending.next ? pending.current : null;
    message(
      other
        ? `One address is confirmed. Now open the link sent to ${other}.`
        : 'One address is confirmed. Now open the link sent to the other address.',
    );
    return true;
  }
  return false;
}

export function wireEmailChange({ busy, message }) {
  $('email-change-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('change-email'), async () => {
      const to = $('new-email').value.trim();
      const user = await auth.updateUser({ email: to });
      if (user.email === to) {
        // The project confirms nothing (a guest account on an autoconfirming project).
        finish(to, message);
        return;
      }
      pending = { current: user.email, next: to };
      $('email-change-current').textContent = user.email;
      $('email-change-new').textContent = to;
      $('email-change-text').textContent =
        `We sent a confirmation link to ${to}. If your project also asks your current address to agree, ` +
        `a link went to ${user.email} too. Open the link${user.email ? 's' : ''} on this computer; ` +
        'if the emails show codes, you can enter them below instead.';
      $('email-change-current-form').hidden = false;
      $('email-change-new-form').hidden = false;
      $('email-change-step').hidden = false;
    });
  });
  for (const which of ['current', 'new']) {
    $(`email-change-${which}-form`).addEventListener('submit', (ev) => {
      ev.preventDefault();
      busy($(`email-change-verify-${which}`), async () => {
        if (!pending) return;
        const [email, other] =
          which === 'current' ? [pending.current, pending.next] : [pending.next, pending.current];
        const input = $(`email-change-code-${which}`);
        const outcome = await auth.confirmEmailChange(email, input.value.trim());
        input.value = '';
        if (outcome.status === 'changed') finish(outcome.user.email, message);
        else {
          $(`email-change-${which}-form`).hidden = true;
          message(`${email} agreed. Now open the link (or enter the code) sent to ${other}.`);
        }
      });
    });
  }
}
