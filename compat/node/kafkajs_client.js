#!/usr/bin/env node
// Arus conformance scenarios driven through kafkajs.
//
// Usage: node kafkajs_client.js --bootstrap HOST:PORT --scenarios a,b,c [--verify-dir DIR]
//
// kafkajs has no consumer without a consumer group, and Arus has no groups
// yet (issue 3). So the consume side of every scenario is n/a for kafkajs:
// each produce scenario writes what it sent to DIR/<scenario>.json and prints
// it as "verify" in its JSON line; run.py then reads the topic back with the
// confluent-kafka program (--verify) and compares. Admin-only checks
// (list offsets, topic admin, errors) run fully here.
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');
const {
  Kafka, logLevel, CompressionTypes, CompressionCodecs, ConfigResourceTypes,
} = require('kafkajs');

const SCENARIO_TIMEOUT_MS = Number(process.env.COMPAT_SCENARIO_TIMEOUT || 45) * 1000;
const CLIENT = 'kafkajs';
const CONSUME_NA = 'n/a (needs consumer groups, issue 3)';

const codecStatus = { gzip: 'built in' };
try {
  CompressionCodecs[CompressionTypes.Snappy] = require('kafkajs-snappy');
  codecStatus.snappy = 'kafkajs-snappy';
} catch (e) { codecStatus.snappyError = String(e.message || e); }
try {
  const LZ4Codec = require('kafkajs-lz4');
  CompressionCodecs[CompressionTypes.LZ4] = new LZ4Codec().codec;
  codecStatus.lz4 = 'kafkajs-lz4';
} catch (e) { codecStatus.lz4Error = String(e.message || e); }
try {
  const { ZstdCodec } = require('@kafkajs/zstd');
  CompressionCodecs[CompressionTypes.ZSTD] = ZstdCodec();
  codecStatus.zstd = '@kafkajs/zstd';
} catch (e) {
  codecStatus.zstdError = '@kafkajs/zstd is not installed: its native dependency cppzst 2.0.6 fails to '
    + 'compile against Node 20 headers (needs C++17); kafkajs has no other zstd codec';
}

class Fail extends Error {}
class NotApplicable extends Error {}
function check(cond, msg) { if (!cond) throw new Fail(msg); }

function parseArgs() {
  const out = { scenarios: '' };
  const a = process.argv.slice(2);
  for (let i = 0; i < a.length; i++) {
    if (a[i] === '--bootstrap') out.bootstrap = a[++i];
    else if (a[i] === '--scenarios') out.scenarios = a[++i];
    else if (a[i] === '--verify-dir') out.verifyDir = a[++i];
  }
  if (!out.bootstrap) { console.error('--bootstrap required'); process.exit(2); }
  return out;
}

const args = parseArgs();

function kafka() {
  return new Kafka({
    clientId: 'arus-compat',
    brokers: [args.bootstrap],
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 15000,
    retry: { retries: 3, initialRetryTime: 200, maxRetryTime: 2000 },
  });
}

function uniqueTopic(scenario) {
  return `compat-${CLIENT}-${scenario.replace(/_/g, '-')}-${crypto.randomBytes(5).toString('hex')}`;
}

function baseTimestamp() { return (Math.floor(Date.now() / 1000) - 3600) * 1000; }

function makeRecords(n, { nkeys = 0, headers = true, valuePad = 0 } = {}) {
  const ts0 = baseTimestamp();
  const tag = crypto.randomBytes(4).toString('hex');
  const recs = [];
  for (let i = 0; i < n; i++) {
    const key = `key-${nkeys ? i % nkeys : i}`;
    const value = `value-${tag}-${i}-${'x'.repeat(valuePad)}`;
    // kafkajs cannot send a null header value (Buffer.from(null) throws), so
    // the second header has an empty value instead.
    const hdrs = headers ? [['h-index', String(i)], ['h-empty', '']] : [];
    recs.push({ key, value, headers: hdrs, timestamp: ts0 + i * 7 });
  }
  return recs;
}

function toMessage(r, partition) {
  const m = { key: r.key, value: r.value, timestamp: String(r.timestamp) };
  if (r.headers.length) m.headers = Object.fromEntries(r.headers);
  if (partition !== undefined) m.partition = partition;
  return m;
}

async function withAdmin(fn) {
  const admin = kafka().admin();
  await admin.connect();
  try { return await fn(admin); } finally { await admin.disconnect().catch(() => {}); }
}

async function createTopic(topic, numPartitions, configEntries = []) {
  return withAdmin(async (admin) => {
    const created = await admin.createTopics({
      topics: [{ topic, numPartitions, replicationFactor: 1, configEntries }],
      waitForLeaders: true,
      timeout: 10000,
    });
    check(created, `createTopics(${topic}) returned false (already exists?)`);
  });
}

async function produce(topic, recs, { acks = -1, compression = CompressionTypes.None, partitionOf } = {}) {
  const producer = kafka().producer({ idempotent: false, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    // One send() per batch of 25 so records are batched (and compressed) together.
    for (let i = 0; i < recs.length; i += 25) {
      const chunk = recs.slice(i, i + 25);
      const res = await producer.send({
        topic, acks, compression, timeout: 15000,
        messages: chunk.map((r, j) => toMessage(r, partitionOf ? partitionOf(i + j) : undefined)),
      });
      for (const r of res) check(r.errorCode === 0, `produce error code ${r.errorCode} on partition ${r.partition}`);
    }
  } finally {
    await producer.disconnect().catch(() => {});
  }
}

function writeVerify(scenario, topic, recs, opts = {}) {
  check(args.verifyDir, `${CONSUME_NA}; no --verify-dir given for cross-client read-back`);
  fs.mkdirSync(args.verifyDir, { recursive: true });
  const file = path.join(args.verifyDir, `kafkajs-${scenario}.json`);
  fs.writeFileSync(file, JSON.stringify({
    topic,
    records: recs.map((r) => ({ key: r.key, value: r.value, headers: r.headers, timestamp: r.timestamp })),
    check_headers: true,
    check_ts: true,
    ...opts,
  }));
  return file;
}

// ------------------------------------------------------------- scenarios
// Produce scenarios return { detail, verify } — the read-back is done by run.py.

async function roundtrip(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 3);
  const recs = makeRecords(50);
  await produce(topic, recs, { partitionOf: (i) => i % 3 });
  return { detail: `produced 50 records to 3 partitions; consume ${CONSUME_NA}`, verify: writeVerify(name, topic, recs) };
}

async function keyOrder(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 4);
  const recs = makeRecords(200, { nkeys: 5, headers: false });
  await produce(topic, recs);
  return {
    detail: `produced 200 records over 5 keys (default partitioner); consume ${CONSUME_NA}`,
    verify: writeVerify(name, topic, recs, { key_partition: true, check_headers: false }),
  };
}

function compression(codec, type) {
  return async (name) => {
    if (!codecStatus[codec]) throw new NotApplicable(codecStatus[`${codec}Error`] || `no ${codec} codec`);
    const topic = uniqueTopic(name);
    await createTopic(topic, 1);
    const recs = makeRecords(100, { valuePad: 100 });
    await produce(topic, recs, { compression: type });
    return { detail: `produced 100 ${codec} records (${codecStatus[codec]}); consume ${CONSUME_NA}`, verify: writeVerify(name, topic, recs) };
  };
}

function acks(level) {
  return async (name) => {
    const topic = uniqueTopic(name);
    await createTopic(topic, 1);
    const recs = makeRecords(100);
    await produce(topic, recs, { acks: level });
    return {
      detail: `produced 100 records with acks=${level}; consume ${CONSUME_NA}`,
      verify: writeVerify(name, topic, recs, level === 0 ? { wait_s: 25 } : {}),
    };
  };
}

async function listOffsetsTime(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 1);
  const t0 = baseTimestamp();
  const recs = [];
  for (let i = 0; i < 10; i++) recs.push({ key: `k${i}`, value: `v${i}`, headers: [], timestamp: t0 + 1000 * i });
  await produce(topic, recs, { partitionOf: () => 0 });
  return withAdmin(async (admin) => {
    const at = async (ts) => {
      const r = await admin.fetchTopicOffsetsByTimestamp(topic, ts);
      return Number(r.find((p) => p.partition === 0).offset);
    };
    const got = {
      'ts(T0+3500)': await at(t0 + 3500),
      'ts(after last)': await at(t0 + 9001),
    };
    const offs = (await admin.fetchTopicOffsets(topic)).find((p) => p.partition === 0);
    got.earliest = Number(offs.low);
    got.latest = Number(offs.high);
    // kafkajs maps the protocol's "no such offset" (-1) to the latest offset,
    // so a time after the last record reads back as 10 here.
    const want = { 'ts(T0+3500)': 4, 'ts(after last)': 10, earliest: 0, latest: 10 };
    check(JSON.stringify(got) === JSON.stringify(want), `got ${JSON.stringify(got)}, want ${JSON.stringify(want)}`);
    return { detail: `offsets ${JSON.stringify(got)} (kafkajs reports -1 as the latest offset)` };
  });
}

function errorType(e) {
  if (!e) return undefined;
  if (e.type) return e.type;
  if (e.errors && e.errors.length) return errorType(e.errors[0]);
  return errorType(e.originalError || e.cause);
}

function errorCode(e) {
  if (!e) return undefined;
  if (typeof e.code === 'number') return e.code;
  if (e.errors && e.errors.length) return errorCode(e.errors[0]);
  return errorCode(e.originalError || e.cause);
}

async function topicAdmin(name) {
  const topic = uniqueTopic(name);
  return withAdmin(async (admin) => {
    const created = await admin.createTopics({
      topics: [{
        topic, numPartitions: 2, replicationFactor: 1,
        configEntries: [{ name: 'retention.ms', value: '3600000' }, { name: 'cleanup.policy', value: 'delete' }],
      }],
      waitForLeaders: true, timeout: 10000,
    });
    check(created === true, `createTopics returned ${created}`);

    const md = await admin.fetchTopicMetadata({ topics: [topic] });
    const parts = md.topics[0].partitions;
    check(parts.map((p) => p.partitionId).sort().join() === '0,1', `partitions ${JSON.stringify(parts)}`);
    check(parts.every((p) => p.leader === 1), `leaders ${parts.map((p) => p.leader)}, want 1`);

    const describe = async () => {
      const r = await admin.describeConfigs({
        resources: [{ type: ConfigResourceTypes.TOPIC, name: topic }], includeSynonyms: false,
      });
      const res = r.resources[0];
      check(res.errorCode === 0, `describeConfigs error ${res.errorCode} ${res.errorMessage}`);
      return Object.fromEntries(res.configEntries.map((c) => [c.configName, c.configValue]));
    };
    let cfg = await describe();
    check(cfg['retention.ms'] === '3600000', `retention.ms described as ${cfg['retention.ms']}`);
    check(cfg['cleanup.policy'] === 'delete', `cleanup.policy described as ${cfg['cleanup.policy']}`);

    // kafkajs only has (non-incremental) AlterConfigs.
    await admin.alterConfigs({
      validateOnly: false,
      resources: [{
        type: ConfigResourceTypes.TOPIC, name: topic,
        configEntries: [{ name: 'retention.ms', value: '7200000' }, { name: 'cleanup.policy', value: 'delete' }],
      }],
    });
    cfg = await describe();
    check(cfg['retention.ms'] === '7200000', `after alterConfigs retention.ms = ${cfg['retention.ms']}`);

    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }], timeout: 10000 });
    const md4 = await admin.fetchTopicMetadata({ topics: [topic] });
    check(md4.topics[0].partitions.length === 4, `after createPartitions(4): ${md4.topics[0].partitions.length}`);

    // kafkajs maps TOPIC_ALREADY_EXISTS to a `false` result instead of throwing.
    let again;
    try {
      again = await admin.createTopics({ topics: [{ topic, numPartitions: 1, replicationFactor: 1 }], timeout: 10000 });
    } catch (e) {
      again = errorType(e);
    }
    check(again === false || again === 'TOPIC_ALREADY_EXISTS', `create again -> ${again}, want TOPIC_ALREADY_EXISTS (false)`);

    let rf3;
    try {
      rf3 = await admin.createTopics({ topics: [{ topic: `${topic}-rf3`, numPartitions: 1, replicationFactor: 3 }], timeout: 10000 });
      throw new Fail(`replication factor 3 accepted (${rf3})`);
    } catch (e) {
      if (e instanceof Fail) throw e;
      rf3 = errorType(e);
    }
    check(rf3 === 'INVALID_REPLICATION_FACTOR', `rf=3 -> ${rf3}, want INVALID_REPLICATION_FACTOR`);

    await admin.deleteTopics({ topics: [topic], timeout: 10000 });
    let gone = false;
    for (let i = 0; i < 20 && !gone; i++) {
      gone = !(await admin.listTopics()).includes(topic);
      if (!gone) await new Promise((r) => setTimeout(r, 500));
    }
    check(gone, 'topic still listed after delete');
    return { detail: 'create/describe/configs/alter/partitions/errors/delete ok (already-exists reported as createTopics()=false)' };
  });
}

async function messageTooLarge(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 1, [{ name: 'max.message.bytes', value: '2048' }]);
  const producer = kafka().producer({ idempotent: false, allowAutoTopicCreation: false });
  await producer.connect();
  try {
    let err;
    try {
      await producer.send({ topic, acks: -1, messages: [{ value: 'x'.repeat(4000) }] });
    } catch (e) {
      err = e;
    }
    check(err, '4000-byte record accepted (max.message.bytes=2048)');
    const type = errorType(err);
    const code = errorCode(err);
    check(type === 'MESSAGE_TOO_LARGE' || code === 10, `4000-byte record: ${err.name}: ${err.message} (type ${type}, code ${code}), want MESSAGE_TOO_LARGE (10)`);
    const res = await producer.send({ topic, acks: -1, messages: [{ value: 'y'.repeat(500) }] });
    check(res[0].errorCode === 0, `500-byte record error ${res[0].errorCode}`);
    return { detail: `4000 B -> ${type} (code ${code}); 500 B -> offset ${res[0].baseOffset}` };
  } finally {
    await producer.disconnect().catch(() => {});
  }
}

const SCENARIOS = {
  roundtrip,
  key_order: keyOrder,
  compression_gzip: compression('gzip', CompressionTypes.GZIP),
  compression_snappy: compression('snappy', CompressionTypes.Snappy),
  compression_lz4: compression('lz4', CompressionTypes.LZ4),
  compression_zstd: compression('zstd', CompressionTypes.ZSTD),
  acks_0: acks(0),
  acks_1: acks(1),
  acks_all: acks(-1),
  list_offsets_time: listOffsetsTime,
  topic_admin: topicAdmin,
  message_too_large: messageTooLarge,
};

function emit(obj) { process.stdout.write(`${JSON.stringify(obj)}\n`); }

async function main() {
  const names = args.scenarios.split(',').filter(Boolean);
  for (const name of names) {
    const fn = SCENARIOS[name];
    if (!fn) { emit({ scenario: name, status: 'fail', detail: 'unknown scenario' }); continue; }
    let timer;
    const timeout = new Promise((_, reject) => {
      timer = setTimeout(() => reject(new Fail(`timed out after ${SCENARIO_TIMEOUT_MS / 1000}s`)), SCENARIO_TIMEOUT_MS);
    });
    try {
      const r = await Promise.race([fn(name), timeout]);
      emit({ scenario: name, status: 'pass', detail: r.detail, ...(r.verify ? { verify: r.verify } : {}) });
    } catch (e) {
      if (e instanceof NotApplicable) emit({ scenario: name, status: 'n/a', detail: e.message });
      else emit({ scenario: name, status: 'fail', detail: `${e.name}: ${e.message}` });
    } finally {
      clearTimeout(timer);
    }
  }
}

main().then(() => process.exit(0), (e) => { console.error(e); process.exit(1); });
