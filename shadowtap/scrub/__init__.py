"""Scrub: nothing sensitive leaves the production trust zone.

Every place a captured request (and its response) can carry personal data is scrubbed: the
path, the query string, header values, JSON bodies field by field (the result is valid JSON
with the same shape), form bodies, and anything else as text. gzip/deflate bodies are
inflated first; a body that cannot be read (br, zstd, …) fails closed with ScrubError, so
the worker sends the record to the DLQ, never to the mirror.

How values are found, cheapest first:

1. field-name rules: a JSON key, form/query name, header name or cookie whose words match
   ``scrub_field_names`` (password, token, secret, ssn, card, cvv, iban, …) is replaced
   without analysis; header names in ``scrub_headers`` (Authorization, Cookie, …) too;
2. a single pre-screen regex: a value with no ``@``, no run of digits, no ``eyJ``, no
   key prefix… cannot hold an entity and is left alone (most values stop here);
3. Presidio's pattern recognizers, only those of ``scrub_entities`` whose own cheap gate
   matches (no NER, no model download); JWTs and API keys (Stripe, AWS, GitHub, Slack,
   Google) have recognizers of ours; phone numbers are ours too (next section);
4. results per distinct value are cached (``scrub_cache_size``).

Fail closed: under a sensitive name or in a sensitive shape, invalid is not safe. Real
traffic is full of typos, test values and numbers from elsewhere, and each is still
someone's data, so a value is scrubbed when it is *shaped* like an entity, valid or not:

- phone numbers: under a phone-like name (the words ``phone``, ``tel``, ``mobile``, ``fax``,
  ``msisdn``, ``cell`` in snake_case, camelCase or kebab-case; not ``hotel``, ``cancelled``),
  any phone-shaped value, bare digits too; elsewhere a number *written* as a phone: E.164
  with ``+``, NANP with separators or brackets, or the national format (trunk prefix, then
  groups) of one of ``scrub_phone_regions``, whose length ``phonenumbers`` calls *possible*
  (unassigned area codes and numbers of other countries included);
- card numbers that fail Luhn, when laid out as a major network's card (prefix, length,
  4-4-4-4 / 4-6-5 / 4-6-4 or contiguous); a Luhn-valid number only when written as a card
  (not a 13-digit barcode, not a 3-7-7 order number);
- IBANs with bad check digits in their country's exact format;
- e-mails under private top-level domains (``.internal``, ``.corp``, ``.local``), but not
  file names (``logo@2x.png``) or package pins (``react@18.2.0``);
- SSN-shaped numbers outside the issued ranges (``000``, ``666``, ``9xx``, ``…-00-…``);
- IPv6 short forms (``::1``, ``fe80::1``) and unsigned JWTs match as they are.

A number with letters next to it, a date, a decimal or a bare digit run (outside a phone
name) is not phone-shaped; four dotted numbers that are a valid IPv4 literal are an address
even when they are a version (nothing tells them apart).

With ``scrub_nlp_model`` naming an installed spaCy model, Presidio's AnalyzerEngine also
looks for names and locations in free text (off by default).

Replacements (``scrub_mode``):

- ``pseudonymize`` (default): consistent per ``scrub_key`` (keyed HMAC-SHA256), and shaped
  like the original so staging validation passes: an e-mail stays an e-mail
  (``u-…@example.com``), a card number a Luhn-valid test number with the same layout, a phone
  one with the same layout (a valid phone of the same region when the original was valid;
  NANP keeps its area code), an IBAN one with valid check digits, an SSN a valid-form SSN,
  an IP a private address, a JWT a well-formed JWT; field-rule values keep their character
  classes and length;
- ``redact``: ``[EMAIL_ADDRESS]`` … and ``[REDACTED]``;
- ``hash``: ``<ENTITY>_<16 hex digits of HMAC>``.

Settings (``[processor]``): ``scrub_mode``, ``scrub_key`` (empty: a fixed development key —
set one in production, the same for every worker), ``scrub_entities``,
``scrub_thresholds`` (minimum score per entity, default 0.4, US_SSN 0.5),
``scrub_field_names``, ``scrub_headers``, ``scrub_skip_headers`` (values left as they are),
``scrub_phone_regions`` (ISO codes ``phonenumbers`` knows, else start-up fails),
``scrub_nlp_model``, ``scrub_cache_size``::

    from shadowtap.scrub.scrubber import Scrubber

    scrubber = Scrubber.from_settings(settings.processor)
    counts = scrubber.scrub(env)      # in place; {"EMAIL_ADDRESS": 2, "field": 1, …}

Modules, in the order a value meets them:

- ``scrubber``: ``Scrubber``, which walks an envelope's parts and caches results per value;
- ``field_names``: what a field's name says (``FieldRules``, ``is_phone_name``);
- ``gates``: the pre-screen and each entity's cheap gate;
- ``detector``: ``Detector``, every finding in one value, overlaps resolved;
- ``recognizers``: Presidio's pattern recognizers run directly (``offline_tldextract``);
  ``fail_closed``: their checks widened from "valid" to "shaped like one";
- ``phones``, ``cards``, ``credentials``: what phone numbers, card numbers, JWTs and API
  keys look like; ``checkdigits``: Luhn and IBAN check digits;
- ``pseudonyms``: ``Pseudonyms``, format-keeping replacements;
- ``entities``: the entity kinds (``Entity``, Presidio's names) and their thresholds.
"""
