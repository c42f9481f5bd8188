module puente.interop/trustlist

go 1.26
