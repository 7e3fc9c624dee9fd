// @ts-check
/** What each error code means, in words a person reads (the service's own message is shown below it). */
const WORDS = {
  NOT_AN_IMAGE: 'This file is not an image.',
  UNSUPPORTED_IMAGE_TYPE: 'This kind of image is not supported (JPEG, PNG, GIF, WebP and TIFF are).',
  UNDECODABLE_IMAGE: 'The image is damaged and cannot be read.',
  IMAGE_TOO_LARGE: 'The image has too many pixels.',
  TOO_LARGE: 'The file is too large.',
  TOO_MANY_FILES: 'Too many files in one request.',
  EMPTY_FILE: 'The file is empty.',
  BAD_FILE_NAME: 'The file name cannot be used (control characters, or too long).',
  BAD_MULTIPART: 'The upload arrived broken.',
  NO_FILE: 'No file arrived.',
  UNSUPPORTED_MEDIA_TYPE: 'The upload was not sent as a form or an image.',
  DEAD_LETTER: 'Classifying this image failed again and again; it is kept for the operator to retry.',
  MODEL_FAILED: 'The model failed on this image.',
  INPUT_MISSING: 'The stored image was lost before it was classified.',
  BAD_MESSAGE: 'The request was garbled on its way to a worker.',
  TIMEOUT: 'No answer came in time.',
  STORAGE_UNAVAILABLE: "The service's storage cannot be reached; try again later.",
  QUEUE_UNAVAILABLE: "The service's queue cannot be reached; try again later.",
  SHUTTING_DOWN: 'The service is restarting; try again in a moment.',
  OVERLOADED: 'The service is too busy to answer in time; try again in a little while.',
  NOT_READY: 'The service is not ready yet.',
  UNAUTHORIZED: 'An API key is needed.',
  NO_KEY: 'No API key was given.',
  NETWORK: 'The service could not be reached.',
  NO_SUCH_JOB: 'The service does not know this job.',
  INTERNAL: 'Something went wrong inside the service.',
  BAD_SOURCE: 'That is not an S3 location (s3://bucket/prefix/).',
  SOURCE_NOT_ALLOWED: 'The service may not read that bucket.',
  SOURCE_NOT_FOUND: 'There is no such bucket or object.',
  NO_SUCH_BATCH: 'The service does not know this batch.',
  BATCH_FINISHED: 'The batch has already ended.',
  CANCELLED: 'The batch was cancelled.',
  BAD_NOTIFY: 'That is not a webhook URL or an SNS topic.',
  NOTIFY_NOT_ALLOWED: 'The service may not call that address.',
};

/** @param {string} code */
export function errorWords(code) {
  return /** @type {Record<string, string>} */ (WORDS)[code] ?? 'The service refused this.';
}
