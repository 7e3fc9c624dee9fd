/**
 * The names of multipart file parts: RFC 5987 `filename*` (the one that wins when both are sent,
 * RFC 6266 §4.3), in UTF-8 or ISO-8859-1; percent escapes that are not UTF-8 do not stop an upload.
 */
import test from 'ava';
import { extendedFileName } from '../web/uploads.js';

test('filename* is decoded in its charset; no filename* is undefined', (t) => {
  t.is(extendedFileName(`form-data; name="myfile"; filename*=UTF-8''%D1%80%D1%8B%D0%B1%D0%BA%D0%B0.jpg`), 'рыбка.jpg');
  t.is(extendedFileName(`form-data; name="myfile"; filename*=utf-8'en'Grandpa%27s%20catch.jpg`), "Grandpa's catch.jpg");
  t.is(extendedFileName(`form-data; name="myfile"; filename*=ISO-8859-1''caf%E9.jpg`), 'café.jpg');
  t.is(extendedFileName(`form-data; name="myfile"; filename="plain.jpg"; filename*=UTF-8''%E2%82%AC.jpg`), '€.jpg');
  t.is(extendedFileName(`form-data; name="myfile"; filename="plain.jpg"`), undefined);
  t.is(extendedFileName(`form-data; name="filename*"`), undefined);
});

test('escapes that do not make UTF-8 become U+FFFD instead of failing the upload', (t) => {
  t.is(extendedFileName(`form-data; name="myfile"; filename*=UTF-8''%FF%FE.jpg`), '\ufffd\ufffd.jpg');
});
