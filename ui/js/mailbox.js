// The demo mailbox: the mail the built-in demo server sent (codes shown, links opened by
// the Rust side exactly as the OS would hand them over), so magic links, confirmations and
// password resets work in the demo without a terminal.
import * as auth from './auth.js';

const $ = (id) => document.getElementById(id);

/** Lists the mail; `open(id)` is called for a mail's "Open link". */
export async function renderMailbox(open) {
  const list = $('mail-list');
  $('mailbox-status').textContent = '';
  try {
    const mails = await auth.demoMailbox();
    list.replaceChildren(
      ...mails.map((m) => {
        const li = document.createElement('li');
        li.className = 'device';
        li.dataset.mail = m.id;
        const info = document.createElement('div');
        const subject = document.createElement('strong');
        subject.textContent = m.subject;
        const details = document.createElement('span');
        details.className = 'hint';
        details.textContent = `to ${m.to} · ${new Date(m.sentAt).toLocaleTimeString()}`;
        info.append(subject, document.createElement('br'), details);
        if (m.code) {
          const code = document.createElement('p');
          code.append('Code: ');
          const c = document.createElement('code');
          c.className = 'mail-code';
          c.textContent = m.code;
          code.append(c);
          info.append(code);
        }
        li.append(info);
        if (m.hasLink) {
          const button = document.createElement('button');
          button.type = 'button';
          button.className = 'mail-open';
          button.textContent = 'Open link';
          button.addEventListener('click', () => open(m.id, button));
          li.append(button);
        }
        return li;
      }),
    );
    if (!mails.length) $('mailbox-status').textContent = 'No mail yet.';
  } catch (e) {
    list.replaceChildren();
    $('mailbox-status').textContent = e.message || String(e);
  }
}
