@0xcd2c6232cb484a28;

struct BlockRef {
    hash @0 :Data;  # header byte order
    height @1 :Int32;
}
