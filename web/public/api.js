// @ts-check
/**
 * Calls to the service. With access control on, every call carries `Authorization: Bearer <key>`;
 * the key is asked for once, when a call answers 401, and kept in sessionStorage (this tab only).
 * Calls that meet a 401 while the question is open wait for the same answer.
 */

const KEY = 'eir.apiKey';

/** An error with the service's code, or one of ours (`NETWORK`, `NO_KEY`). */
export class ApiError extends Error {
  /**
   * @param {string} code
   * @param {string} message
   * @param {number} [status]
   */
  constructor(code, message, status) {
    super(message);
    this.name = 'ApiError';
    this.code = code;
    this.status = status;
  }
}

/** @type {Promise<string | null> | undefined} */
let asking;

/** @param {boolean} refused */
function askForKey(refused) {
  asking ??= new Promise((resolve) => {
    const dialog = /** @type {HTMLDialogElement} */ (document.getElementById('key-dialog'));
    const form = /** @type {HTMLFormElement} */ (document.getElementById('key-form'));
    const input = /** @type {HTMLInputElement} */ (document.getElementById('key-input'));
    const why = /** @type {HTMLElement} */ (document.getElementById('key-why'));
    const cancel = /** @type {HTMLButtonElement} */ (document.getElementById('key-cancel'));
    why.textContent = refused
      ? 'That API key was not accepted. Enter another; it is kept for this tab only.'
      : 'This service asks for an API key. It is kept for this tab only.';
    input.value = '';
    /** @param {string | null} key */
    const done = (key) => {
      form.removeEventListener('submit', onSubmit);
      cancel.removeEventListener('click', onCancel);
      dialog.removeEventListener('cancel', onCancel);
      if (dialog.open) dialog.close();
      asking = undefined;
      resolve(key);
    };
    /** @param {Event} event */
    const onSubmit = (event) => {
      event.preventDefault();
      const key = input.value.trim();
      if (key) done(key);
    };
    const onCancel = () => done(null);
    form.addEventListener('submit', onSubmit);
    cancel.addEventListener('click', onCancel);
    dialog.addEventListener('cancel', onCancel);
    dialog.showModal();
    input.focus();
  });
  return asking;
}

/**
 * `fetch` with the key, asking for it on a 401 and trying once more with the answer.
 * @param {string} path
 * @param {RequestInit} [init]
 * @returns {Promise<Response>}
 */
export async function apiFetch(path, init = {}) {
  for (let attempt = 0; ; attempt++) {
    const key = sessionStorage.getItem(KEY);
    const headers = new Headers(init.headers);
    if (key) headers.set('Authorization', `Bearer ${key}`);
    let response;
    try {
      response = await fetch(path, { ...init, headers });
    } catch (err) {
      if (init.signal?.aborted) throw err;
      throw new ApiError('NETWORK', 'the service could not be reached');
    }
    if (response.status !== 401 || attempt >= 3) return response;
    // A key another call stored meanwhile is tried before asking.
    if (sessionStorage.getItem(KEY) !== key) continue;
    const entered = await askForKey(key !== null);
    if (entered === null) throw new ApiError('NO_KEY', 'no API key was given', 401);
    sessionStorage.setItem(KEY, entered);
  }
}

/**
 * The JSON body of an answer, or the ApiError it carries.
 * @param {Response} response
 */
export async function readJson(response) {
  const type = response.headers.get('content-type') ?? '';
  const body = type.includes('application/json') ? await response.json() : undefined;
  if (!response.ok) {
    const error = body?.error;
    throw new ApiError(
      error?.code ?? `HTTP_${response.status}`,
      error?.message ?? `the service answered ${response.status}`,
      response.status,
    );
  }
  return body;
}

/** @param {number} ms */
export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
