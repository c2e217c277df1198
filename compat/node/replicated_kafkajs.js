#!/usr/bin/env node
// kafkajs side of compat/replicated.py: runs one scenario's client steps, asks the orchestrator
// for each fault (`FAULT x` on stdout, the answer on stdin) and ends with `RESULT <json>`.
// Arguments: SCENARIO BOOTSTRAP TOPIC TOPIC2 GROUP TXN_ID N (see replicated.py).
// kafkajs has no consumer without a group: reading back uses a fresh group per read.
'use strict';

const crypto = require('crypto');
const readline = require('readline');
const { Kafka, logLevel } = require('kafkajs');

const [SCENARIO, BOOTSTRAP, TOPIC, TOPIC2, GROUP, TXN_ID, N_ARG] = process.argv.slice(2);
const N = Number(N_ARG);
const answers = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();

async function fault(what) {
  process.stdout.write(`FAULT ${what}\n`);
  const { value } = await answers.next();
  if (!value || !value.startsWith('OK')) {
    console.error(`fault ${what} refused: ${value}`);
    process.exit(1);
  }
}

// Retries long enough to ride out a leader election (broker.session.timeout.ms=6000 + election).
function kafka(retries = 12) {
  return new Kafka({
    clientId: 'arus-replicated',
    brokers: BOOTSTRAP.split(','),
    logLevel: logLevel.ERROR,
    connectionTimeout: 3000,
    requestTimeout: 20000,
    retry: { retries, initialRetryTime: 300, maxRetryTime: 3000 },
  });
}

// A disconnect that waits for a coordinator that never answers must not hang the scenario.
function bounded(promise, ms = 10000) {
  return Promise.race([promise, new Promise((r) => setTimeout(r, ms))]);
}

function describe(e) {
  const parts = [`${e.name}: ${e.message}`];
  if (e.type) parts.push(`type=${e.type}`);
  if (e.cause) parts.push(`cause=${e.cause.name}: ${e.cause.message}${e.cause.type ? ` type=${e.cause.type}` : ''}`);
  return parts.join(' ');
}

// Sends every record in one call (acks=all); returns the errors (all records fail together).
async function send(producer, topic, recs) {
  try {
    await producer.send({
      topic, acks: -1, timeout: 20000,
      messages: recs.map(([partition, key, value]) => ({ partition, key, value })),
    });
    return [];
  } catch (e) {
    return [`${recs.map((r) => r[2]).join(',')}: ${describe(e)}`];
  }
}

// Reads the topic from the start with a fresh group: [partition, key, value].
async function read(topic, count, readUncommitted = false) {
  const consumer = kafka().consumer({ groupId: `rep-read-${crypto.randomBytes(4).toString('hex')}`, readUncommitted });
  const out = [];
  await consumer.connect();
  await consumer.subscribe({ topic, fromBeginning: true });
  await consumer.run({
    eachMessage: async ({ partition, message }) => {
      out.push([partition, message.key ? message.key.toString() : '', message.value.toString()]);
    },
  });
  const deadline = Date.now() + 30000;
  while (out.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  // Keep consuming a moment after the last expected record: a duplicate would show here.
  await new Promise((r) => setTimeout(r, 1500));
  await consumer.disconnect();
  return out;
}

async function replicatedFailover() {
  const p = kafka().producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await p.connect();
  const recs = [];
  for (let i = 0; i < 2 * N; i++) recs.push([i % 3, `k${i % 6}`, `v${i}`]);
  const errors = await send(p, TOPIC, recs.slice(0, N));
  await fault('kill-leader');
  errors.push(...await send(p, TOPIC, recs.slice(N)));
  await p.disconnect();
  await fault('restart');
  return { send_errors: errors, consumed: await read(TOPIC, 2 * N) };
}

async function minIsr() {
  // No retries, so the broker's answer reaches the application as it is.
  const p = kafka(0).producer({ idempotent: false, allowAutoTopicCreation: false });
  await p.connect();
  const steps = {};
  for (const [name, count, f] of [['a', 5, ''], ['b', 5, 'kill-follower'], ['c', 1, 'kill-follower'], ['d', 5, 'restart']]) {
    if (f) await fault(f);
    const recs = [];
    for (let i = 0; i < count; i++) recs.push([0, null, `${name}${i}`]);
    // One record per call, so each step's errors count records, as in the other clients.
    steps[name] = [];
    for (const r of recs) steps[name].push(...await send(p, TOPIC, [r]));
  }
  await p.disconnect();
  return { steps, consumed: (await read(TOPIC, 15, true)).map((r) => r[2]) };
}

async function coordinatorFailover() {
  const errors = [];
  const p = kafka().producer({ allowAutoTopicCreation: false });
  await p.connect();
  const gs = [];
  for (let i = 0; i < 20; i++) gs.push([0, null, `g${i}`]);
  errors.push(...await send(p, TOPIC, gs));
  await p.disconnect();

  async function member(count) {
    const c = kafka().consumer({ groupId: GROUP, sessionTimeout: 10000 });
    const got = [];
    await c.connect();
    await c.subscribe({ topic: TOPIC, fromBeginning: true });
    await c.run({ autoCommit: false, eachMessage: async ({ message }) => { if (got.length < count) got.push(message.value.toString()); } });
    const deadline = Date.now() + 30000;
    while (got.length < count && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
    return [c, got];
  }
  const [c1, first] = await member(10);
  try {
    await c1.commitOffsets([{ topic: TOPIC, partition: 0, offset: '10' }]);
  } catch (e) { errors.push(`commit: ${describe(e)}`); }
  await bounded(c1.disconnect());
  await fault('kill-group-coordinator');
  const [c2, second] = await member(10);
  await bounded(c2.disconnect());
  await fault('restart');

  const t = kafka().producer({ transactionalId: TXN_ID, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await t.connect();
  for (const start of [0, 5]) {
    if (start === 5) await fault('kill-txn-coordinator');
    try {
      const tx = await t.transaction();
      const msgs = [];
      for (let i = start; i < start + 5; i++) msgs.push({ partition: 0, value: `t${i}` });
      await tx.send({ topic: TOPIC2, messages: msgs });
      await tx.commit();
    } catch (e) { errors.push(`transaction t${start}..: ${describe(e)}`); }
  }
  await t.disconnect();
  await fault('restart');
  const txn = (await read(TOPIC2, 10)).map((r) => r[2]);
  return { errors, group_first: first, group_second: second, txn_consumed: txn };
}

(async () => {
  const scenarios = { replicated_failover: replicatedFailover, min_isr: minIsr, coordinator_failover: coordinatorFailover };
  const result = await scenarios[SCENARIO]();
  process.stdout.write(`RESULT ${JSON.stringify(result)}\n`);
  process.exit(0);
})().catch((e) => { console.error(e); process.exit(1); });
