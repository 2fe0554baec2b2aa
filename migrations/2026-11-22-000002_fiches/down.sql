DROP TABLE transcriptions;
DROP TABLE recordings;
DROP TABLE fiches;
