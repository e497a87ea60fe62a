# Bitcoin Core's Mining interface over IPC, schema major version 30: what Stratum V2 pools
# and template providers (SRI's pool_sv2, sv2-tp) call on a node. Timeouts are milliseconds.
@0xc77d03df6a41b505;

using Common = import "common.capnp";
using Proxy = import "proxy.capnp";

interface Mining {
    isTestChain @0 (context :Proxy.Context) -> (result :Bool);
    isInitialBlockDownload @1 (context :Proxy.Context) -> (result :Bool);
    getTip @2 (context :Proxy.Context) -> (result :Common.BlockRef, hasResult :Bool);
    waitTipChanged @3 (context :Proxy.Context, currentTip :Data, timeout :Float64)
        -> (result :Common.BlockRef);
    createNewBlock @4 (options :BlockCreateOptions) -> (result :BlockTemplate);
    checkBlock @5 (block :Data, options :BlockCheckOptions)
        -> (reason :Text, debug :Text, result :Bool);
}

interface BlockTemplate {
    destroy @0 (context :Proxy.Context) -> ();
    getBlockHeader @1 (context :Proxy.Context) -> (result :Data);
    getBlock @2 (context :Proxy.Context) -> (result :Data);
    getTxFees @3 (context :Proxy.Context) -> (result :List(Int64));
    getTxSigops @4 (context :Proxy.Context) -> (result :List(Int64));
    getCoinbaseTx @5 (context :Proxy.Context) -> (result :Data);
    getCoinbaseCommitment @6 (context :Proxy.Context) -> (result :Data);
    getWitnessCommitmentIndex @7 (context :Proxy.Context) -> (result :Int32);
    getCoinbaseMerklePath @8 (context :Proxy.Context) -> (result :List(Data));
    submitSolution @9 (context :Proxy.Context, version :UInt32, timestamp :UInt32,
                       nonce :UInt32, coinbase :Data) -> (result :Bool);
    waitNext @10 (context :Proxy.Context, options :BlockWaitOptions) -> (result :BlockTemplate);
    interruptWait @11 () -> ();
}

struct BlockCreateOptions {
    useMempool @0 :Bool;
    blockReservedWeight @1 :UInt64;
    coinbaseOutputMaxAdditionalSigops @2 :UInt64;
}

struct BlockWaitOptions {
    timeout @0 :Float64;
    feeThreshold @1 :Int64;
}

struct BlockCheckOptions {
    checkMerkleRoot @0 :Bool;
    checkPow @1 :Bool;
}
