#!/usr/bin/env node
// Arus conformance scenarios driven through kafkajs.
//
// Usage: node kafkajs_client.js --bootstrap HOST:PORT --scenarios a,b,c [--verify-dir DIR] [--groups]
//
// kafkajs has no consumer without a consumer group. With --groups (run.py
// passes it when the broker advertises the group APIs) every produce scenario
// reads its topic back with a kafkajs consumer group and compares. Without it
// (a broker without groups) the consume side is n/a for kafkajs: each produce
// scenario writes what it sent to DIR/<scenario>.json and prints it as
// "verify" in its JSON line; run.py then reads the topic back with the
// confluent-kafka program (--verify) and compares. Admin-only checks (list
// offsets, topic admin, errors) run fully either way.
'use strict';

const net = require('net');
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
    else if (a[i] === '--groups') out.groups = true;
  }
  if (!out.bootstrap) { console.error('--bootstrap required'); process.exit(2); }
  return out;
}

const args = parseArgs();

function kafka() {
  return new Kafka({
    clientId: 'arus-compat',
    brokers: args.bootstrap.split(','), // several in cluster mode (compat/run.py --cluster N)
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
  await topicEverywhere(topic, numPartitions);
}

// Whether the broker at addr lists the topic with every partition led, in its own Metadata
// (a raw v1 request: kafkajs picks which broker answers its Metadata).
function topicListedBy(addr, topic, partitions) {
  const [host, port] = [addr.slice(0, addr.lastIndexOf(':')), Number(addr.slice(addr.lastIndexOf(':') + 1))];
  const client = Buffer.from('arus-compat'), name = Buffer.from(topic);
  const req = Buffer.alloc(4 + 2 + 2 + 4 + 2 + client.length + 4 + 2 + name.length);
  let o = req.writeInt32BE(req.length - 4, 0);
  o = req.writeInt16BE(3, o); o = req.writeInt16BE(1, o); o = req.writeInt32BE(1, o);
  o = req.writeInt16BE(client.length, o); o += client.copy(req, o);
  o = req.writeInt32BE(1, o); o = req.writeInt16BE(name.length, o); name.copy(req, o);
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    let buf = Buffer.alloc(0);
    const done = (v) => { sock.destroy(); resolve(v); };
    sock.setTimeout(2000, () => done(false));
    sock.on('error', () => done(false));
    sock.on('connect', () => sock.write(req));
    sock.on('data', (d) => {
      buf = Buffer.concat([buf, d]);
      if (buf.length < 4 || buf.length < 4 + buf.readInt32BE(0)) return;
      try {
        let p = 8; // size, correlation id
        const i16 = () => { const v = buf.readInt16BE(p); p += 2; return v; };
        const i32 = () => { const v = buf.readInt32BE(p); p += 4; return v; };
        const str = () => { const n = i16(); if (n < 0) return null; const v = buf.toString('utf8', p, p + n); p += n; return v; };
        for (let b = i32(); b > 0; b--) { i32(); str(); i32(); str(); }
        i32(); // controller id
        for (let t = i32(); t > 0; t--) {
          const err = i16(), got = str(); p += 1;
          const n = i32(); let led = 0;
          for (let q = 0; q < n; q++) {
            const perr = i16(); i32(); const leader = i32();
            for (let r = i32(); r > 0; r--) i32();
            for (let r = i32(); r > 0; r--) i32();
            if (perr === 0 && leader >= 0) led++;
          }
          if (got === topic) return done(err === 0 && n === partitions && led === partitions);
        }
        done(false);
      } catch (e) { done(false); }
    });
  });
}

// Waits until every broker of the bootstrap string lists a new topic: brokers replay a created
// topic asynchronously, so on a cluster a producer with retries 0 may otherwise reach a leader
// that has not replayed it yet (Kafka's own tests wait the same way,
// TestUtils.waitForAllPartitionsMetadata; compat/python/common.py wait_topic_everywhere).
async function topicEverywhere(topic, partitions, timeoutMs = 10000) {
  const addrs = args.bootstrap.split(',').filter((a) => a);
  if (addrs.length < 2) return;
  const deadline = Date.now() + timeoutMs;
  for (const a of addrs) {
    while (!(await topicListedBy(a, topic, partitions))) {
      if (Date.now() > deadline) throw new Fail(`topic ${topic} not listed with ${partitions} led partitions by ${a} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

async function produce(topic, recs, { acks = -1, compression = CompressionTypes.None, partitionOf } = {}) {
  // kafkajs' default is not idempotent either way; run.py's COMPAT_IDEMPOTENCE only
  // stops the harness from forcing it (the explicit false below is kafkajs' default).
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
// Produce scenarios read back with a consumer group (--groups) or return
// { detail, verify } for run.py's cross-client read-back.

async function roundtrip(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 3);
  const recs = makeRecords(50);
  await produce(topic, recs, { partitionOf: (i) => i % 3 });
  return consumeOrVerify(name, topic, recs, 'produced 50 records to 3 partitions');
}

async function keyOrder(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 4);
  const recs = makeRecords(200, { nkeys: 5, headers: false });
  await produce(topic, recs);
  return consumeOrVerify(name, topic, recs, 'produced 200 records over 5 keys (default partitioner)',
    { key_partition: true, check_headers: false });
}

function compression(codec, type) {
  return async (name) => {
    if (!codecStatus[codec]) throw new NotApplicable(codecStatus[`${codec}Error`] || `no ${codec} codec`);
    const topic = uniqueTopic(name);
    await createTopic(topic, 1);
    const recs = makeRecords(100, { valuePad: 100 });
    await produce(topic, recs, { compression: type });
    return consumeOrVerify(name, topic, recs, `produced 100 ${codec} records (${codecStatus[codec]})`);
  };
}

function acks(level) {
  return async (name) => {
    const topic = uniqueTopic(name);
    await createTopic(topic, 1);
    const recs = makeRecords(100);
    await produce(topic, recs, { acks: level });
    return consumeOrVerify(name, topic, recs, `produced 100 records with acks=${level}`, level === 0 ? { wait_s: 25 } : {});
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
    // Leaders: any registered broker (one node, or a cluster: compat/run.py --cluster N).
    const brokers = (await admin.describeCluster()).brokers.map((b) => b.nodeId);
    check(parts.every((p) => brokers.includes(p.leader)), `leaders ${parts.map((p) => p.leader)}, want one of the brokers ${brokers}`);

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
    // KRaft applies it asynchronously; in a cluster the describe may reach a broker behind.
    for (let i = 0; i < 20; i++) {
      cfg = await describe();
      if (cfg['retention.ms'] === '7200000') break;
      await new Promise((r) => setTimeout(r, 250));
    }
    check(cfg['retention.ms'] === '7200000', `after alterConfigs retention.ms = ${cfg['retention.ms']}`);

    await admin.createPartitions({ topicPartitions: [{ topic, count: 4 }], timeout: 10000 });
    // Brokers apply the new partitions asynchronously: in a cluster the metadata may come from a
    // broker that has not replayed them yet, so re-fetch for up to 5 s.
    let md4;
    for (let i = 0; i < 20; i++) {
      md4 = await admin.fetchTopicMetadata({ topics: [topic] });
      if (md4.topics[0].partitions.length === 4) break;
      await new Promise((r) => setTimeout(r, 250));
    }
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
    const tooMany = brokers.length + 1; // one replica more than there are brokers
    try {
      rf3 = await admin.createTopics({ topics: [{ topic: `${topic}-rf3`, numPartitions: 1, replicationFactor: tooMany }], timeout: 10000 });
      throw new Fail(`replication factor ${tooMany} accepted on ${brokers.length} brokers (${rf3})`);
    } catch (e) {
      if (e instanceof Fail) throw e;
      rf3 = errorType(e);
    }
    check(rf3 === 'INVALID_REPLICATION_FACTOR', `rf=${tooMany} -> ${rf3}, want INVALID_REPLICATION_FACTOR`);

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

// ------------------------------------------------------------- consumer groups (issue 3)

const { AssignerProtocol } = require('kafkajs');

const SESSION_TIMEOUT_MS = 10000;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function uniqueGroup(scenario, n = '') {
  return `compat-${CLIENT}-${scenario.replace(/_/g, '-')}-group${n}-${crypto.randomBytes(5).toString('hex')}`;
}

// One group member: a kafkajs consumer running eachMessage, keeping what it read,
// its current assignment (from GROUP_JOIN events) and the next offset per partition.
class Member {
  constructor(groupId, topic, { readUncommitted = false } = {}) {
    this.groupId = groupId;
    this.topic = topic;
    this.readUncommitted = readUncommitted;
    this.got = {};
    this.next = {};
    this.parts = [];
    this.joins = [];
    this.crashed = null;
    this.closed = false;
  }

  async start() {
    this.consumer = kafka().consumer({
      groupId: this.groupId, sessionTimeout: SESSION_TIMEOUT_MS, heartbeatInterval: 1000,
      rebalanceTimeout: 20000, maxWaitTimeInMs: 500, readUncommitted: this.readUncommitted,
    });
    const { GROUP_JOIN, CRASH } = this.consumer.events;
    this.consumer.on(GROUP_JOIN, (e) => {
      this.parts = [...(e.payload.memberAssignment[this.topic] || [])].sort((a, b) => a - b);
      this.joins.push(this.parts);
    });
    this.consumer.on(CRASH, (e) => { this.crashed = e.payload.error; });
    await this.consumer.connect();
    await this.consumer.subscribe({ topics: [this.topic], fromBeginning: true });
    await this.consumer.run({
      autoCommit: false,
      eachMessage: async ({ partition, message }) => {
        (this.got[partition] = this.got[partition] || []).push(toGot(message));
        this.next[partition] = Number(message.offset) + 1;
      },
    });
    return this;
  }

  count() { return Object.values(this.got).reduce((n, l) => n + l.length, 0); }

  snapshot() { return Object.fromEntries(Object.entries(this.got).map(([p, l]) => [p, [...l]])); }

  async commit(offsets) {
    const o = offsets || this.next;
    await this.consumer.commitOffsets(Object.entries(o).map(([partition, offset]) => ({
      topic: this.topic, partition: Number(partition), offset: String(offset),
    })));
  }

  async close() {
    if (this.closed) return;
    this.closed = true;
    await this.consumer.disconnect(); // stops the runner and sends LeaveGroup
  }
}

function toGot(message) {
  const headers = Object.entries(message.headers || {}).map(([k, v]) => [k, v === null || v === undefined ? null : v.toString()]);
  return {
    offset: Number(message.offset), key: message.key && message.key.toString(), value: message.value && message.value.toString(),
    headers, timestamp: Number(message.timestamp),
  };
}

async function startMembers(groupId, topic, n) {
  const ms = [];
  for (let i = 0; i < n; i++) ms.push(new Member(groupId, topic));
  await Promise.all(ms.map((m) => m.start()));
  return ms;
}

async function closeAll(ms) {
  await Promise.all(ms.filter(Boolean).map((m) => m.close().catch(() => {})));
}

async function waitFor(ms, cond, timeoutMs, what) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    for (const m of ms) if (m.crashed) throw new Fail(`consumer crashed: ${m.crashed.message}`);
    if (cond()) return;
    if (Date.now() > deadline) {
      throw new Fail(`${what} not reached within ${timeoutMs / 1000}s (assignments ${JSON.stringify(ms.map((m) => m.parts))}, `
        + `read ${JSON.stringify(ms.map((m) => m.count()))})`);
    }
    await sleep(100);
  }
}

// Same checks as python/common.py compare(); got: {partition: [{offset,key,value,headers,timestamp}]}.
function compare(sent, got, { checkHeaders = true, keyPartition = false } = {}) {
  const total = Object.values(got).reduce((n, l) => n + l.length, 0);
  check(total === sent.length, `read ${total} records, sent ${sent.length}`);
  const index = new Map(sent.map((r, i) => [r.value, i]));
  const seen = new Set();
  const keyParts = new Map();
  let nonEmpty = 0;
  for (const p of Object.keys(got).map(Number).sort((a, b) => a - b)) {
    let last = -1;
    if (got[p].length) nonEmpty++;
    got[p].forEach((r, n) => {
      check(r.offset === n, `partition ${p}: offset ${r.offset} at position ${n} (not contiguous from 0)`);
      const i = index.get(r.value);
      check(i !== undefined, `partition ${p} offset ${r.offset}: unexpected value`);
      check(!seen.has(i), `record ${i} read twice`);
      seen.add(i);
      const s = sent[i];
      check(r.key === s.key, `record ${i}: key ${r.key} != sent ${s.key}`);
      if (checkHeaders) {
        check(JSON.stringify(r.headers) === JSON.stringify(s.headers),
          `record ${i}: headers ${JSON.stringify(r.headers)} != sent ${JSON.stringify(s.headers)}`);
      }
      check(r.timestamp === s.timestamp, `record ${i}: timestamp ${r.timestamp} != sent ${s.timestamp}`);
      check(i > last, `partition ${p}: record ${i} read after record ${last} (produce order broken)`);
      last = i;
      if (keyPartition) {
        const prev = keyParts.get(s.key);
        check(prev === undefined || prev === p, `key ${s.key} found in partitions ${prev} and ${p}`);
        keyParts.set(s.key, p);
      }
    });
  }
  return `${total} records over ${nonEmpty} partitions verified`;
}

function checkOnly(sent, got, what) {
  const values = new Set(sent.map((r) => r.value));
  const seen = new Set();
  for (const [p, l] of Object.entries(got)) {
    for (const r of l) {
      check(values.has(r.value), `${what}: partition ${p} offset ${r.offset}: record not in the expected set`);
      check(!seen.has(r.value), `${what}: partition ${p} offset ${r.offset} read twice`);
      seen.add(r.value);
    }
  }
  check(seen.size === values.size, `${what}: read ${seen.size} of ${values.size} expected records`);
}

function mergeMembers(ms) {
  const out = {};
  const owner = {};
  ms.forEach((m, i) => {
    for (const [p, l] of Object.entries(m.snapshot())) {
      if (!l.length) continue;
      check(owner[p] === undefined, `partition ${p} read by members ${owner[p]} and ${i}`);
      owner[p] = i;
      out[p] = l;
    }
  });
  return out;
}

// Consume side of the produce scenarios once the broker has groups: a fresh
// group reads the whole topic from the beginning.
async function readAll(topic, expected, { timeoutMs = 20000 } = {}) {
  const m = await new Member(uniqueGroup('read'), topic).start();
  try {
    await waitFor([m], () => m.count() >= expected, timeoutMs, `${expected} records read`);
    await sleep(300);
    const high = await withAdmin(async (admin) => (await admin.fetchTopicOffsets(topic))
      .reduce((n, p) => n + Number(p.high), 0));
    check(high === m.count(), `high watermarks sum to ${high} but ${m.count()} records read`);
    return m.snapshot();
  } finally {
    await m.close().catch(() => {});
  }
}

async function consumeOrVerify(name, topic, recs, detail, opts = {}) {
  if (!args.groups) return { detail: `${detail}; consume ${CONSUME_NA}`, verify: writeVerify(name, topic, recs, opts) };
  const got = await readAll(topic, recs.length, { timeoutMs: opts.wait_s ? opts.wait_s * 1000 : 20000 });
  const d = compare(recs, got, { checkHeaders: opts.check_headers !== false, keyPartition: !!opts.key_partition });
  return { detail: `${detail}; read back by a kafkajs consumer group: ${d}` };
}

async function groupSplit(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 6);
  const ms = await startMembers(uniqueGroup(name), topic, 3);
  try {
    await waitFor(ms, () => ms.every((m) => m.parts.length === 2), 30000, '3 members x 2 partitions');
    const recs = makeRecords(600, { nkeys: 60, headers: false });
    await produce(topic, recs);
    await waitFor(ms, () => ms.reduce((n, m) => n + m.count(), 0) >= 600, 20000, '600 records read');
    await sleep(1000);
    const split = ms.map((m) => m.parts);
    check(JSON.stringify(split.flat().sort((a, b) => a - b)) === '[0,1,2,3,4,5]', `assignments ${JSON.stringify(split)} do not cover 0..5 once`);
    const d = compare(recs, mergeMembers(ms), { checkHeaders: false, keyPartition: true });
    return { detail: `${d}; read by 3 members ${JSON.stringify(ms.map((m) => m.count()))} (assignments ${JSON.stringify(split)})` };
  } finally {
    await closeAll(ms);
  }
}

async function groupMemberLeaves(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 4);
  const [a, b] = await startMembers(uniqueGroup(name), topic, 2);
  try {
    await waitFor([a, b], () => a.parts.length === 2 && b.parts.length === 2, 30000, '2 members x 2 partitions');
    const bParts = b.parts;
    const first = makeRecords(100, { nkeys: 20, headers: false });
    await produce(topic, first);
    await waitFor([a, b], () => a.count() + b.count() >= 100, 20000, 'first 100 records read');
    await a.commit();
    await b.commit();
    await b.close(); // LeaveGroup
    await waitFor([a], () => JSON.stringify(a.parts) === '[0,1,2,3]', 20000, 'survivor owns all 4 partitions');
    const before = Object.fromEntries(Object.entries(a.snapshot()).map(([p, l]) => [p, l.length]));
    const n0 = a.count();
    const second = makeRecords(100, { nkeys: 20, headers: false });
    await produce(topic, second);
    await waitFor([a], () => a.count() - n0 >= 100, 20000, 'second 100 records read by the survivor');
    await sleep(1000);
    const after = Object.fromEntries(Object.entries(a.snapshot()).map(([p, l]) => [p, l.slice(before[p] || 0)]));
    checkOnly(second, after, 'survivor after the leave');
    const moved = bParts.reduce((n, p) => n + (after[p] || []).length, 0);
    check(moved > 0, `no post-leave record came from the leaver's partitions ${bParts}`);
    return { detail: `member left; its partitions ${JSON.stringify(bParts)} moved to the survivor, which read all 100 later records (${moved} from moved partitions), none twice` };
  } finally {
    await closeAll([a, b]);
  }
}

async function twoGroups(name) {
  const topic = uniqueTopic(name);
  await createTopic(topic, 3);
  const recs = makeRecords(150, { nkeys: 30, headers: false });
  await produce(topic, recs);
  const g1 = await new Member(uniqueGroup(name, 1), topic).start();
  const g2 = await new Member(uniqueGroup(name, 2), topic).start();
  try {
    await waitFor([g1, g2], () => g1.count() >= 150 && g2.count() >= 150, 30000, 'each group read 150 records');
    await sleep(1000);
    const o = { checkHeaders: false, keyPartition: true };
    return { detail: `group 1: ${compare(recs, g1.snapshot(), o)}; group 2: ${compare(recs, g2.snapshot(), o)}` };
  } finally {
    await closeAll([g1, g2]);
  }
}

async function fetchCommitted(admin, groupId, topic) {
  const r = await admin.fetchOffsets({ groupId, topics: [topic] });
  return Object.fromEntries(r[0].partitions.map((p) => [p.partition, Number(p.offset)]));
}

async function commitResume(name) {
  const topic = uniqueTopic(name);
  const group = uniqueGroup(name);
  await createTopic(topic, 3);
  const recs = makeRecords(200, { nkeys: 30, headers: false });
  const first = recs.slice(0, 100);
  const second = recs.slice(100);
  await produce(topic, first);
  let committed;
  const m1 = await new Member(group, topic).start();
  try {
    await waitFor([m1], () => m1.count() >= 100, 30000, 'first half read');
    await sleep(500);
    const got1 = m1.snapshot();
    checkOnly(first, got1, 'first member');
    await m1.commit();
    committed = await withAdmin((admin) => fetchCommitted(admin, group, topic));
    const want = Object.fromEntries([0, 1, 2].map((p) => [p, (got1[p] || []).length || -1]));
    check(JSON.stringify(committed) === JSON.stringify(want), `committed ${JSON.stringify(committed)}, want ${JSON.stringify(want)}`);
  } finally {
    await m1.close().catch(() => {});
  }
  await produce(topic, second);
  const m2 = await new Member(group, topic).start();
  try {
    await waitFor([m2], () => m2.count() >= 100, 30000, 'second half read');
    await sleep(1000);
    const got2 = m2.snapshot();
    checkOnly(second, got2, 'new member');
    for (const [p, l] of Object.entries(got2)) {
      if (l.length) check(l[0].offset === committed[p], `new member started partition ${p} at ${l[0].offset}, committed ${committed[p]}`);
    }
    return { detail: `committed ${JSON.stringify(committed)} after 100 records; new member resumed there and read exactly the other 100` };
  } finally {
    await m2.close().catch(() => {});
  }
}

async function cooperativeSticky() {
  throw new NotApplicable('kafkajs has no cooperative rebalance protocol (only eager assigners; built in: round-robin)');
}

async function staticMember() {
  throw new NotApplicable('kafkajs has no static membership (no group.instance.id option; JoinGroup is sent without an instance id)');
}

async function offsetsAdmin(name) {
  const topic = uniqueTopic(name);
  const group = uniqueGroup(name);
  await createTopic(topic, 3);
  const recs = makeRecords(30, { headers: false });
  await produce(topic, recs, { partitionOf: (i) => i % 3 });
  return withAdmin(async (admin) => {
    const m = await new Member(group, topic).start();
    try {
      await waitFor([m], () => m.count() >= 30, 30000, '30 records read');
      await m.commit({ 0: 4, 1: 4, 2: 4 });
      const listed = (await admin.listGroups()).groups.map((g) => g.groupId);
      check(listed.includes(group), `listGroups does not show ${group}`);
      const d = (await admin.describeGroups([group])).groups[0];
      check(d.state === 'Stable' && d.members.length === 1, `describeGroups: ${d.state} with ${d.members.length} members`);
      const asg = AssignerProtocol.MemberAssignment.decode(d.members[0].memberAssignment);
      check(JSON.stringify([...(asg.assignment[topic] || [])].sort()) === '[0,1,2]', `describe: member assignment ${JSON.stringify(asg.assignment)}`);
    } finally {
      await m.close().catch(() => {});
    }
    const c = await fetchCommitted(admin, group, topic);
    const ends = Object.fromEntries((await admin.fetchTopicOffsets(topic)).map((p) => [p.partition, Number(p.high)]));
    const lag = Object.fromEntries(Object.entries(c).map(([p, o]) => [p, ends[p] - o]));
    check(JSON.stringify(c) === '{"0":4,"1":4,"2":4}', `committed ${JSON.stringify(c)}, want 4 each`);
    check(JSON.stringify(lag) === '{"0":6,"1":6,"2":6}', `lag ${JSON.stringify(lag)}, want 6 each (end ${JSON.stringify(ends)})`);
    const state = (await admin.describeGroups([group])).groups[0].state;
    check(state === 'Empty', `group state ${state} after its member left, want Empty`);
    await admin.setOffsets({ groupId: group, topic, partitions: [0, 1, 2].map((p) => ({ partition: p, offset: '7' })) });
    const c2 = await fetchCommitted(admin, group, topic);
    check(JSON.stringify(c2) === '{"0":7,"1":7,"2":7}', `after setOffsets: committed ${JSON.stringify(c2)}, want 7 each`);
    const m2 = await new Member(group, topic).start();
    try {
      await waitFor([m2], () => m2.count() >= 9, 30000, '9 records after the reset');
      await sleep(1000);
      const starts = Object.fromEntries(Object.entries(m2.snapshot()).map(([p, l]) => [p, l[0].offset]));
      check(JSON.stringify(starts) === '{"0":7,"1":7,"2":7}' && m2.count() === 9, `after reset read from ${JSON.stringify(starts)}, ${m2.count()} records`);
    } finally {
      await m2.close().catch(() => {});
    }
    return { detail: 'committed 4/partition, end 10 -> lag 6 each (admin.fetchOffsets, fetchTopicOffsets); listGroups + describeGroups '
      + '(1 member, 3 partitions, then Empty); admin.setOffsets -> 7; new member read offsets 7..9 of each partition' };
  });
}

// ------------------------------------------------------------- transactions (issue 4)

const TXN_TIMEOUT_MS = 5000; // an abandoned transaction is aborted by the broker after this
const FENCED = new Set(['PRODUCER_FENCED', 'INVALID_PRODUCER_EPOCH']);

function kvs(prefix, n, nkeys) {
  const tag = crypto.randomBytes(4).toString('hex');
  return Array.from({ length: n }, (_, i) => ({ key: `key-${i % nkeys}`, value: `${prefix}-${tag}-${i}` }));
}

async function txnProducer(transactionalId, transactionTimeout = 30000) {
  const p = kafka().producer({
    transactionalId, transactionTimeout, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false,
  });
  await p.connect(); // InitProducerId
  return p;
}

// A fresh consumer group reads the whole topic (kafkajs consumers: read_committed
// unless readUncommitted) until `expected` records arrived and then `quietMs` more.
async function readIsolated(topic, readUncommitted, expected, quietMs = 1500) {
  const m = await new Member(uniqueGroup('read'), topic, { readUncommitted }).start();
  try {
    await waitFor([m], () => m.count() >= expected, 20000, `${expected} records read (${readUncommitted ? 'read_uncommitted' : 'read_committed'})`);
    await sleep(quietMs);
    return m.snapshot();
  } finally {
    await m.close().catch(() => {});
  }
}

// got holds exactly `expected` once each (nothing aborted, no control marker), in produce order per partition.
function checkExact(expected, got, what) {
  const index = new Map(expected.map((r, i) => [r.value, i]));
  const seen = new Set();
  for (const p of Object.keys(got).map(Number).sort((a, b) => a - b)) {
    let last = -1;
    for (const r of got[p]) {
      const i = index.get(r.value);
      check(i !== undefined, `${what}: partition ${p} offset ${r.offset}: unexpected record ${r.value} (aborted, foreign or a control marker)`);
      check(!seen.has(i), `${what}: partition ${p} offset ${r.offset}: record ${i} read twice`);
      seen.add(i);
      check(r.key === expected[i].key, `${what}: record ${i}: key differs`);
      check(i > last, `${what}: partition ${p}: record ${i} read after record ${last}`);
      last = i;
    }
  }
  check(seen.size === expected.length, `${what}: read ${seen.size} of the ${expected.length} expected records`);
}

async function highWatermarks(topic) {
  return withAdmin(async (admin) => Object.fromEntries((await admin.fetchTopicOffsets(topic))
    .map((p) => [p.partition, Number(p.high)])));
}

function txnNeedsGroups() {
  if (!args.groups) throw new NotApplicable(`kafkajs reads only through a consumer group: ${CONSUME_NA}`);
}

async function txnCommitAbort(name) {
  txnNeedsGroups();
  const topic = uniqueTopic(name);
  await createTopic(topic, 3);
  const recs = kvs('value', 90, 9);
  const txns = [recs.slice(0, 30), recs.slice(30, 60), recs.slice(60)];
  const p = await txnProducer(uniqueGroup(name, '-txn'));
  try {
    for (let t = 0; t < 3; t++) {
      const tx = await p.transaction();
      // send() resolves once the broker stored the records (also the ones aborted next).
      await tx.send({ topic, acks: -1, messages: txns[t].map((r) => ({ key: r.key, value: r.value })) });
      if (t === 1) await tx.abort(); else await tx.commit();
    }
  } finally {
    await p.disconnect().catch(() => {});
  }
  const committed = [...txns[0], ...txns[2]];
  checkExact(committed, await readIsolated(topic, false, committed.length), 'read_committed');
  const all = await readIsolated(topic, true, recs.length);
  checkExact(recs, all, 'read_uncommitted');
  // Each transaction leaves one control marker in every partition it wrote to.
  let markers = 0;
  for (const t of txns) {
    const vals = new Set(t.map((r) => r.value));
    for (const l of Object.values(all)) if (l.some((g) => vals.has(g.value))) markers++;
  }
  const high = await highWatermarks(topic);
  const sum = Object.values(high).reduce((a, b) => a + b, 0);
  check(sum === recs.length + markers, `high watermarks ${JSON.stringify(high)} sum to ${sum}, want 90 records + ${markers} markers`);
  return {
    detail: 'commit 30 / abort 30 / commit 30 over 3 partitions: read_committed saw exactly the 60 committed in order, '
      + `read_uncommitted all 90, no marker surfaced; high watermarks ${JSON.stringify(high)} = 90 records + ${markers} markers`,
  };
}

async function txnConsumeTransformProduce(name) {
  txnNeedsGroups();
  const n = 60;
  const src = uniqueTopic('ctp-in');
  const dst = uniqueTopic('ctp-out');
  const groupId = uniqueGroup('txn_ctp');
  await createTopic(src, 3);
  await createTopic(dst, 3);
  const recs = kvs('value', n, 12);
  await produce(src, recs.map((r) => ({ ...r, headers: [], timestamp: Date.now() })));
  const ends = await highWatermarks(src);
  const p = await txnProducer(`${groupId}-txn`);
  const admin = kafka().admin();
  await admin.connect();
  const consumer = kafka().consumer({ groupId, sessionTimeout: SESSION_TIMEOUT_MS, heartbeatInterval: 1000, maxWaitTimeInMs: 300 });
  let aborted = 0;
  let batches = 0;
  let crashed = null;
  consumer.on(consumer.events.CRASH, (e) => { crashed = e.payload.error; });
  const committedOffsets = async () => {
    const r = await admin.fetchOffsets({ groupId, topics: [src] });
    return Object.fromEntries(r[0].partitions.map((x) => [x.partition, Number(x.offset)]));
  };
  let committed;
  try {
    await consumer.connect();
    await consumer.subscribe({ topics: [src], fromBeginning: true });
    await consumer.run({
      autoCommit: false,
      eachBatchAutoResolve: false,
      eachBatch: async ({ batch, resolveOffset, heartbeat, isRunning, isStale }) => {
        // Transactions of up to 8 records each.
        for (let i = 0; i < batch.messages.length; i += 8) {
          if (!isRunning() || isStale()) return;
          const chunk = batch.messages.slice(i, i + 8);
          const tx = await p.transaction();
          await tx.send({ topic: dst, acks: -1, messages: chunk.map((m) => ({ key: m.key, value: `out-${m.value.toString()}` })) });
          if (batches === 1 && aborted === 0) {
            // Abort this attempt midway and reprocess from the committed position.
            await tx.abort();
            aborted = chunk.length;
            const c = (await committedOffsets())[batch.partition];
            consumer.seek({ topic: src, partition: batch.partition, offset: String(c >= 0 ? c : 0) });
            return;
          }
          const next = Number(chunk[chunk.length - 1].offset) + 1;
          await tx.sendOffsets({ consumerGroupId: groupId, topics: [{ topic: src, partitions: [{ partition: batch.partition, offset: String(next) }] }] });
          await tx.commit();
          resolveOffset(chunk[chunk.length - 1].offset);
          batches++;
          await heartbeat();
        }
      },
    });
    const deadline = Date.now() + 30000;
    for (;;) {
      if (crashed) throw new Fail(`consumer crashed: ${crashed.message}`);
      committed = await committedOffsets();
      if (Object.keys(ends).every((pp) => committed[pp] === ends[pp])) break;
      check(Date.now() < deadline, `input not consumed within 30s (committed ${JSON.stringify(committed)}, ends ${JSON.stringify(ends)})`);
      await sleep(200);
    }
  } finally {
    await consumer.disconnect().catch(() => {});
    await p.disconnect().catch(() => {});
    await admin.disconnect().catch(() => {});
  }
  check(aborted > 0, 'no aborted attempt happened');
  checkExact(recs.map((r) => ({ key: r.key, value: `out-${r.value}` })), await readIsolated(dst, false, n), 'output read_committed');
  const u = await readIsolated(dst, true, n + aborted);
  const totalU = Object.values(u).reduce((a, l) => a + l.length, 0);
  check(totalU === n + aborted, `output read_uncommitted has ${totalU} records, want ${n} + ${aborted} aborted`);
  return {
    detail: `${n} input records -> ${batches} committed transactions (+1 aborted attempt of ${aborted} records, reprocessed); `
      + `output read_committed has each exactly once in order; group committed ${JSON.stringify(committed)} = input ends `
      + '(kafkajs sendOffsets carries the group id only, no member id / generation)',
  };
}

function errType(e) {
  for (let x = e; x; x = x.originalError || x.cause) if (x.type) return x.type;
  return undefined;
}

async function txnFencing(name) {
  txnNeedsGroups();
  const topic = uniqueTopic(name);
  await createTopic(topic, 1);
  // (a) a producer abandoned inside its transaction (never used again until the end):
  // read_committed is held at its first record until the broker aborts it after the timeout.
  const abandoned = await txnProducer(uniqueGroup('abandon'), TXN_TIMEOUT_MS);
  const tx = await abandoned.transaction();
  await tx.send({ topic, acks: -1, messages: kvs('abandoned', 10, 1).map((r) => ({ ...r, partition: 0 })) });
  const startedAt = Date.now();
  const later = kvs('later', 5, 5);
  await produce(topic, later.map((r) => ({ ...r, headers: [], timestamp: Date.now() })), { partitionOf: () => 0 });
  const m = await new Member(uniqueGroup('read'), topic).start();
  let firstAt = null;
  try {
    const deadline = startedAt + TXN_TIMEOUT_MS + 15000;
    while (m.count() < 5 && Date.now() < deadline) {
      if (m.count() && !firstAt) firstAt = Date.now();
      await sleep(50);
    }
    if (m.count() && !firstAt) firstAt = Date.now();
    await sleep(1000);
    checkExact(later, m.snapshot(), 'read_committed after the abandoned transaction');
  } finally {
    await m.close().catch(() => {});
  }
  const blocked = (firstAt - startedAt) / 1000;
  check(firstAt && blocked >= 1.0, `read_committed consumer got records ${blocked}s after the abandon: the open transaction did not block it`);
  await abandoned.disconnect().catch(() => {});
  // (b) a new producer with the same transactional.id fences the live old one.
  const tid = uniqueGroup('fence');
  const old = await txnProducer(tid);
  const newRecs = kvs('new', 3, 1);
  let fencedAs;
  try {
    const otx = await old.transaction();
    await otx.send({ topic, acks: -1, messages: [{ key: 'old', value: 'old-1', partition: 0 }] });
    const nw = await txnProducer(tid);
    try {
      const ntx = await nw.transaction();
      await ntx.send({ topic, acks: -1, messages: newRecs.map((r) => ({ ...r, partition: 0 })) });
      await ntx.commit();
    } finally {
      await nw.disconnect().catch(() => {});
    }
    let err = null;
    try {
      await otx.send({ topic, acks: -1, messages: [{ key: 'old', value: 'old-2', partition: 0 }] });
      await otx.commit();
    } catch (e) {
      err = e;
    }
    check(err, 'the fenced producer committed');
    fencedAs = errType(err);
    check(FENCED.has(fencedAs), `fenced producer failed with ${err.name}: ${err.message} (type ${fencedAs}), not a fenced error`);
  } finally {
    await old.disconnect().catch(() => {});
  }
  checkExact([...later, ...newRecs], await readIsolated(topic, false, 8), 'read_committed after the fencing');
  return {
    detail: `(a) read_committed got the 5 records written after the abandoned transaction ${blocked}s later, none of its 10 `
      + `(kafkajs admin has no read_committed ListOffsets: LSO not checked directly); (b) new producer fenced the old one (${fencedAs}), `
      + 'its 3 records committed, the old one\'s never visible',
  };
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
  group_split: groupSplit,
  group_member_leaves: groupMemberLeaves,
  two_groups: twoGroups,
  commit_resume: commitResume,
  cooperative_sticky: cooperativeSticky,
  static_member: staticMember,
  offsets_admin: offsetsAdmin,
  txn_commit_abort: txnCommitAbort,
  txn_consume_transform_produce: txnConsumeTransformProduce,
  txn_fencing: txnFencing,
  txn_admin: async () => {
    throw new NotApplicable('kafkajs admin has no listTransactions / describeTransactions / describeProducers');
  },
  kip848_group: async () => {
    throw new NotApplicable('kafkajs has no KIP-848 consumer group protocol (no group.protocol option; JoinGroup/SyncGroup only)');
  },
};

// Log lifecycle (issue 5): config_alter, retention_reset, compacted_topic.
Object.assign(SCENARIOS, require('./lifecycle_kafkajs')({
  kafka, check, Fail, NotApplicable, uniqueTopic, uniqueGroup, createTopic, withAdmin, errorType, errorCode,
  Member, waitFor, sleep, args, ConfigResourceTypes,
}));

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
