// Signing in from the form: password, sign-up (and its confirmation mail again), a
// forgotten password, an email link or code, OAuth in the browser, anonymous. What the
// page does once signed in is the caller's (`afterSignIn`).
import * as auth from './auth.js';

const $ = (id) => document.getElementById(id);
let oauthWait = null; // the hint shown when an OAuth sign-in does not come back

/** A sign-in arrived: the OAuth hint is no longer needed. */
export function stopWaitingForOAuth() {
  clearTimeout(oauthWait);
}

/**
 * Wires the sign-in form. `signedIn()` says whether a session is on screen;
 * `redirectUrl()` is the callback the project must allow (from `auth.backend()`).
 */
export function wireSignIn({ busy, message, afterSignIn, signedIn, redirectUrl }) {
  $('forgot-password').addEventListener('click', () =>
    busy($('forgot-password'), async () => {
      const email = $('email').value.trim();
      await auth.resetPasswordForEmail(email);
      message(`If an account uses ${email}, a link to reset its password is on its way. Open it on this computer.`);
    }),
  );
  $('resend-confirmation').addEventListener('click', () =>
    busy($('resend-confirmation'), async () => {
      const email = $('email').value.trim();
      await auth.resendConfirmation(email);
      message(`We sent the confirmation to ${email} again.`);
    }),
  );
  $('password-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('sign-in'), async () => {
      const view = await auth.signInWithPassword($('email').value, $('password').value);
      $('password').value = '';
      await afterSignIn(view);
    });
  });
  $('sign-up').addEventListener('click', () =>
    busy($('sign-up'), async () => {
      const outcome = await auth.signUp($('email').value, $('password').value);
      $('password').value = '';
      if (outcome.status === 'signedIn') await afterSignIn(outcome.session);
      else {
        message(`Check your email: we sent a confirmation link to ${outcome.email}.`);
        $('resend-row').hidden = false;
      }
    }),
  );
  $('send-code').addEventListener('click', () =>
    busy($('send-code'), async () => {
      await auth.signInWithOtp($('email').value);
      $('code-form').hidden = false;
      message('We emailed you a sign-in link: open it on this computer. If the email shows a code, you can type it here instead.');
      $('otp-code').focus();
    }),
  );
  $('code-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    busy($('verify-code'), async () => {
      const view = await auth.verifyOtp($('email').value, $('otp-code').value.trim());
      $('otp-code').value = '';
      $('code-form').hidden = true;
      message(null);
      await afterSignIn(view);
    });
  });
  $('oauth-providers').addEventListener('click', (ev) => {
    const button = ev.target.closest('button[data-provider]');
    if (!button) return;
    busy(button, async () => {
      await auth.signInWithOAuth(button.dataset.provider);
      message('Finish signing in in your browser; you will be brought back here.');
      // A sign-in that never comes back: GoTrue keeps it five minutes, and a redirect that
      // is not on the project's list ends on its Site URL, silently. Say what to check.
      clearTimeout(oauthWait);
      oauthWait = setTimeout(() => {
        if (signedIn()) return;
        message(
          'Not back yet? If the browser ended on another page (such as the project’s Site URL) or an error, ' +
            `the project’s Redirect URLs must include ${redirectUrl() || 'tessera://auth/callback**'} ` +
            '(Settings → Server), and the sign-in must be finished within five minutes. Then try again.',
        );
      }, 60000);
    });
  });
  $('anonymous').addEventListener('click', () =>
    busy($('anonymous'), async () => afterSignIn(await auth.signInAnonymously())),
  );
}
