"""The benchmark of issue 3 (``make bench``): datagen -> runs -> report, driven by harness.

- ``datagen``: the realistic CSV, cached on disk by (rows, seed), put in the local S3;
- ``measure``: one child process at a time with its own CPU seconds and peak RSS (wait4);
- ``runs``: csv-to-kafka with each client, kcat, the original design, resume, memory, profile;
- ``report``: the table, issue 3's targets, the JSON under bench/results/;
- ``original_design``: the original specification's processor, the slow baseline.
"""
