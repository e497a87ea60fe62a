# libmultiprocess's thread handles, as Bitcoin Core's IPC clients expect them. File and type
# ids are part of the wire protocol (interface ids travel in every call): they must not change.
@0xcc316e3f71a040fb;

interface ThreadMap {
    makeThread @0 (name :Text) -> (result :Thread);
}

interface Thread {
    getName @0 () -> (result :Text);
}

struct Context {
    thread @0 :Thread;  # where the server should run the call (we run every call alike)
    callbackThread @1 :Thread;
}
