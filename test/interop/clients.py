"""Uploads through Python HTTP clients we did not write, the way their users write them.

    python3 test/interop/clients.py CASE URL PHOTO [NAME]        one upload; prints {"status", "body"}
    python3 test/interop/clients.py threads URL FIELD < photos   one upload per line of stdin
                                                                  ("<path>\t<name>"), all at once, one
                                                                  thread each; prints one JSON per line

Run by test/interop.test.ts with Debian's /usr/bin/python3 (python3-requests, python3-httpx).
"""
import json
import sys
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import requests


def answer(status, body):
    return {"status": status, "body": body}


def multipart(field, disposition_name, data, part_type=None):
    """A multipart body written by hand, for what requests' files= cannot say."""
    boundary = uuid.uuid4().hex
    head = f'--{boundary}\r\nContent-Disposition: form-data; name="{field}"; {disposition_name}\r\n'
    if part_type:
        head += f"Content-Type: {part_type}\r\n"
    body = (head + "\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    return body, f"multipart/form-data; boundary={boundary}"


def chunks(data, size=8192):
    for i in range(0, len(data), size):
        yield data[i : i + size]


def one(case, url, photo, name, field):
    with open(photo, "rb") as f:
        data = f.read()
    if case == "requests-file":  # the README snippet of issue 18: no Content-Type on the part
        with open(photo, "rb") as f:
            r = requests.post(url, files={field: f})
    elif case == "requests-tuple":
        r = requests.post(url, files={field: (name, data, "image/jpeg")})
    elif case == "requests-octet-stream":
        r = requests.post(url, files={field: (name, data, "application/octet-stream")})
    elif case == "requests-wrong-type":
        r = requests.post(url, files={field: (name, data, "image/png")})
    elif case == "requests-stream":  # a generator body: sent with Transfer-Encoding: chunked
        body, content_type = multipart(field, f'filename="{name}"', data)
        r = requests.post(url, data=chunks(body), headers={"Content-Type": content_type})
    elif case == "requests-filename-star":  # RFC 5987 only, as older urllib3 wrote non-ASCII names
        quoted = requests.utils.quote(name.encode("utf-8"), safe="")
        body, content_type = multipart(field, f"filename*=UTF-8''{quoted}", data)
        r = requests.post(url, data=body, headers={"Content-Type": content_type})
    elif case == "requests-raw-stream":  # the API's raw body, chunked
        r = requests.post(url, params={"name": name}, data=chunks(data), headers={"Content-Type": "image/jpeg"})
    elif case == "httpx-file":
        with open(photo, "rb") as f:
            r = httpx.post(url, files={field: f}, timeout=120)
    elif case == "httpx-tuple":
        r = httpx.post(url, files={field: (name, data)}, timeout=120)
    else:
        raise SystemExit(f"unknown case {case}")
    return answer(r.status_code, r.text)


def threads(url, field):
    uploads = [line.rstrip("\n").split("\t") for line in sys.stdin if line.strip()]

    def post(upload):
        path, name = upload
        with open(path, "rb") as f:
            r = requests.post(url, files={field: (name, f)}, timeout=300)
        return {"name": name, **answer(r.status_code, r.text)}

    with ThreadPoolExecutor(max_workers=len(uploads)) as pool:
        for result in pool.map(post, uploads):
            print(json.dumps(result), flush=True)


if __name__ == "__main__":
    case, url = sys.argv[1], sys.argv[2]
    if case == "threads":
        threads(url, sys.argv[3])
    else:
        photo = sys.argv[3]
        name = sys.argv[4] if len(sys.argv) > 4 else photo.rsplit("/", 1)[-1]
        field = sys.argv[5] if len(sys.argv) > 5 else "myfile"
        print(json.dumps(one(case, url, photo, name, field)))
